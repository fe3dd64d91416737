// Dropout on the CPU with Philox masks, computed block-parallel so every thread draws the same
// bits; forward keeps the mask (a byte per element) for backward.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/philox.h"
#include "models/kernels/no_cuda.h"
#include "models/layers/dropout.h"

namespace dpt {

namespace {

// Note [vector philox]: the blocks are generated 64 at a time in structure-of-arrays form so
// that the compiler turns the ten rounds into vector multiplies (vpmuludq); the bits are those
// of Philox::generate, block for block, so CPU and GPU masks still agree.
// Note [kept mask]: on the CPU, forward records which units it kept, one byte each, and
// backward multiplies by that record instead of drawing the mask again: the same bits for a
// quarter of a float's memory, where redrawing (ten Philox rounds per four units) cost as much
// as the forward itself (docs/RESULTS.md). The GPU redraws (Note [random streams]).
void apply_mask(const float* in, float* out, uint8_t* kept, int64_t n, float rate, uint64_t seed,
                uint32_t rank, uint64_t step, uint32_t layer) {
  const float scale = 1.0f / (1.0f - rate);
  const uint32_t threshold = uint32_t(std::ceil(double(rate) * 16777216.0));
  const PhiloxKey key = philox_key(seed, rank);
  const uint32_t stream = uint32_t(RandomStream::kDropout) + layer;
  const uint32_t step_lo = uint32_t(step), step_hi = uint32_t(step >> 32);
  constexpr int kLanes = 64;
  const int64_t blocks = (n + 3) / 4;
  const int64_t chunks = (blocks + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      c0[l] = uint32_t(chunk * kLanes + l);
      c1[l] = step_lo;
      c2[l] = step_hi;
      c3[l] = stream;
    }
    uint32_t k0 = key.k0, k1 = key.k1;
    for (int round = 0; round < 10; ++round) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const uint64_t p0 = uint64_t{0xD2511F53u} * c0[l];
        const uint64_t p1 = uint64_t{0xCD9E8D57u} * c2[l];
        const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[l] ^ k0, n2 = uint32_t(p0 >> 32) ^ c3[l] ^ k1;
        c1[l] = uint32_t(p1);
        c3[l] = uint32_t(p0);
        c0[l] = n0;
        c2[l] = n2;
      }
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // to_unit(w) >= rate  <=>  (w >> 8) >= ceil(rate * 2^24), exactly (both sides are
    // integers scaled by 2^-24); an integer compare and a select, no unpredictable branch.
    const uint32_t* words[4] = {c0, c1, c2, c3};
    const int64_t first = chunk * kLanes * 4;
    const int64_t count = std::min<int64_t>(kLanes * 4, n - first);
    float* o = out + first;
    const float* x = in + first;
    uint8_t* k = kept + first;
    if (count == kLanes * 4) {
      for (int j = 0; j < 4; ++j) {
        const uint32_t* w = words[j];
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const bool keep = (w[l] >> 8) >= threshold;
          k[l * 4 + j] = keep;
          o[l * 4 + j] = x[l * 4 + j] * (keep ? scale : 0.0f);
        }
      }
    } else {
      for (int64_t e = 0; e < count; ++e) {
        const bool keep = (words[e % 4][e / 4] >> 8) >= threshold;
        k[e] = keep;
        o[e] = x[e] * (keep ? scale : 0.0f);
      }
    }
  }
}

}  // namespace

void Dropout::forward_cpu(const Tensor& x, Tensor& y, const StepContext& ctx) {
  last_ = ctx;
  if (passes_through(ctx)) {
    std::memcpy(y.data(), x.data(), size_t(x.size()) * sizeof(float));
    return;
  }
  kept_.resize(size_t(x.size()));
  apply_mask(x.data(), y.data(), kept_.data(), x.size(), rate_, ctx.seed, ctx.rank, ctx.step,
             uint32_t(index()));
}

void Dropout::backward_cpu(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  if (passes_through(last_)) {
    std::memcpy(dx->data(), dy.data(), size_t(dy.size()) * sizeof(float));
    return;
  }
  DPT_ASSERT(int64_t(kept_.size()) == dy.size());  // forward ran on this batch
  const float scale = 1.0f / (1.0f - rate_);
  const uint8_t* k = kept_.data();
  const float* g = dy.data();
  float* out = dx->data();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < dy.size(); ++i) out[i] = g[i] * (k[i] ? scale : 0.0f);
}

// The GPU side of a CPU-only build (kernels/cuda/dropout_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(Dropout)

}  // namespace dpt
