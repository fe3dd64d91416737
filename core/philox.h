// Philox4x32-10 counter-based random numbers: draws depend only on (key, counter), as in cuRAND.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

// Host and device: the CUDA dropout kernel calls the same functions, so masks agree bit for bit.
#ifdef __CUDACC__
#define DPT_HD __host__ __device__
#else
#define DPT_HD
#endif

namespace dpt {

// Note [random streams]: every random draw in dptrain (initialisers, dropout masks,
// shuffles, augmentation) is Philox(key = (seed, rank), counter = (index, step, stream)).
// Nothing has hidden state, so resuming at step s reproduces the same draws, and a CUDA
// kernel computing the same function draws the same dropout mask.
struct Philox {
  using Block = std::array<uint32_t, 4>;

  DPT_HD static Block generate(Block ctr, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = uint64_t{0xD2511F53u} * ctr[0];
      const uint64_t p1 = uint64_t{0xCD9E8D57u} * ctr[2];
      ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ k0, uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ k1,
             uint32_t(p0)};
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    return ctr;
  }

  // Uniform float in [0, 1) from the top 24 bits.
  DPT_HD static float to_unit(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }
};

// Well-known stream ids (the last counter word) so that distinct uses never share draws.
enum class RandomStream : uint32_t {
  kInit = 0x10000000u,     // + parameter index
  kDropout = 0x20000000u,  // + layer index
  kShuffle = 0x30000000u,
  kAugment = 0x40000000u,
};

struct PhiloxKey {
  uint32_t k0, k1;
};
// The key mixes the run's seed with the rank so that ranks draw independent streams.
DPT_HD inline PhiloxKey philox_key(uint64_t seed, uint32_t rank) {
  return {uint32_t(seed) ^ (rank * 0x85EBCA6Bu), uint32_t(seed >> 32) + rank};
}

// A sequential view over one Philox stream: draw i uses counter (i/4, lo, hi, stream).
class PhiloxStream {
 public:
  PhiloxStream(uint64_t seed, uint32_t rank, uint64_t position, uint32_t stream)
      : k0_(philox_key(seed, rank).k0),
        k1_(philox_key(seed, rank).k1),
        pos_lo_(uint32_t(position)),
        pos_hi_(uint32_t(position >> 32)),
        stream_(stream) {}

  uint32_t next_u32() {
    if (used_ == 4) {
      block_ = Philox::generate({counter_++, pos_lo_, pos_hi_, stream_}, k0_, k1_);
      used_ = 0;
    }
    return block_[used_++];
  }
  float uniform() { return Philox::to_unit(next_u32()); }
  // Unbiased integer in [0, n) by rejection.
  uint32_t below(uint32_t n) {
    const uint32_t limit = UINT32_MAX - UINT32_MAX % n;
    uint32_t x;
    do x = next_u32();
    while (x >= limit);
    return x % n;
  }
  // Standard normal by Box-Muller.
  float normal() {
    float u1 = uniform(), u2 = uniform();
    if (u1 < 1e-12f) u1 = 1e-12f;
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853071795864f * u2);
  }

 private:
  uint32_t k0_, k1_, pos_lo_, pos_hi_, stream_;
  uint32_t counter_ = 0;
  Philox::Block block_{};
  int used_ = 4;
};

}  // namespace dpt
