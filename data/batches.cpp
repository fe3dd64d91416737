// Batch assembly with normalisation and crop/flip augmentation, and the background Prefetcher.
#include "data/batches.h"

#include <algorithm>
#include <numeric>

#include "core/philox.h"
#include "core/trace.h"

namespace dpt {

void fill_batch(const ShardData& data, const int64_t* indices, int64_t n, const AugmentSpec& aug,
                uint64_t seed, uint32_t rank, uint64_t epoch, int64_t first_position, Batch& out) {
  const int64_t h = data.height, w = data.width, c = data.channels, sb = data.sample_bytes();
  out.n = n;
  DPT_ASSERT(n <= out.storage.dim(0));
  out.x = Tensor::view(out.storage.data(), {n, h, w, c});
  const PhiloxKey key = philox_key(seed, rank);
  constexpr float kScale = 1.0f / 255.0f;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = indices[i];
    out.y[size_t(i)] = data.labels[size_t(idx)];
    const uint8_t* src = data.images.data() + idx * sb;
    float* dst = out.x.data() + i * sb;
    if (!aug.any()) {
      for (int64_t k = 0; k < sb; ++k) dst[k] = float(src[k]) * kScale;
      continue;
    }
    const uint64_t pos = uint64_t(first_position + i);
    const auto r = Philox::generate(
        {uint32_t(pos), uint32_t(pos >> 32), uint32_t(epoch), uint32_t(RandomStream::kAugment)},
        key.k0, key.k1);
    const int64_t p = aug.crop_pad;
    const int64_t dy = p ? int64_t(r[0] % uint32_t(2 * p + 1)) - p : aug.shift_y;
    const int64_t dx = p ? int64_t(r[1] % uint32_t(2 * p + 1)) - p : aug.shift_x;
    const bool flip = aug.mirror || (aug.flip && (r[2] & 1u));
    auto mirror_in = [](int64_t v, int64_t size) {  // reflect about the border pixel
      if (v < 0) v = -v;
      if (v >= size) v = 2 * size - 2 - v;
      return std::clamp<int64_t>(v, 0, size - 1);  // a shift larger than the image: the edge
    };
    for (int64_t y = 0; y < h; ++y) {
      const int64_t sy = aug.reflect ? mirror_in(y + dy, h) : y + dy;
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sx =
            aug.reflect ? mirror_in((flip ? w - 1 - x : x) + dx, w) : (flip ? w - 1 - x : x) + dx;
        float* o = dst + (y * w + x) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (int64_t k = 0; k < c; ++k) o[k] = 0.0f;
        } else {
          const uint8_t* s = src + (sy * w + sx) * c;
          for (int64_t k = 0; k < c; ++k) o[k] = float(s[k]) * kScale;
        }
      }
    }
  }
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, uint32_t rank,
                                 uint64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  PhiloxStream rng(seed, rank, epoch, uint32_t(RandomStream::kShuffle));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[size_t(i)], order[rng.below(uint32_t(i + 1))]);
  return order;
}

Prefetcher::Prefetcher(const ShardData& data, int64_t batch_capacity, int depth)
    : data_(data), slots_(size_t(std::max(depth, 2))) {
  for (auto& s : slots_) {
    s.storage = Tensor({batch_capacity, data.height, data.width, data.channels});
    s.y.resize(size_t(batch_capacity));
  }
}

void Prefetcher::start(std::vector<int64_t> order, int64_t batch, int64_t first_step,
                       int64_t last_step, AugmentSpec aug, uint64_t seed, uint32_t rank,
                       uint64_t epoch) {
  stop();
  DPT_ASSERT(batch <= slots_[0].storage.dim(0));
  order_ = std::move(order);
  batch_ = batch;
  first_ = first_step;
  last_ = last_step;
  aug_ = aug;
  seed_ = seed;
  rank_ = rank;
  epoch_ = epoch;
  produced_ = consumed_ = 0;
  stopping_ = false;
  error_ = nullptr;
  thread_ = std::thread([this] { run(); });
}

void Prefetcher::run() {
  const int64_t depth = int64_t(slots_.size());
  try {
    for (int64_t s = first_; s < last_; ++s) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        // The consumer holds slot (consumed_-1); never overwrite it or an unread batch.
        cv_.wait(lock, [&] { return stopping_ || produced_ - consumed_ + 1 < depth; });
        if (stopping_) return;
      }
      const int64_t lo = std::min<int64_t>(s * batch_, int64_t(order_.size()));
      const int64_t hi = std::min<int64_t>(lo + batch_, int64_t(order_.size()));
      Batch& b = slots_[size_t(produced_ % depth)];
      {
        trace::Span span("data", "prepare batch", trace::kPrefetch);
        fill_batch(data_, order_.data() + lo, hi - lo, aug_, seed_, rank_, epoch_, lo, b);
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++produced_;
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

const Batch& Prefetcher::next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return produced_ > consumed_ || error_; });
  if (produced_ <= consumed_ && error_) std::rethrow_exception(error_);
  const Batch& b = slots_[size_t(consumed_ % int64_t(slots_.size()))];
  ++consumed_;
  cv_.notify_all();
  return b;
}

void Prefetcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace dpt
