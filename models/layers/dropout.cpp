// Dropout on the CPU with Philox masks, computed block-parallel so every thread draws the same bits.
#include "models/layers/dropout.h"

#include "models/core/philox.h"

namespace dpt {

Dropout::Dropout(Options& opt) : rate_(float(opt.get_double_in("rate", 0.5, 0.0, 0.999))) {}

void Dropout::apply_mask(const float* in, float* out, int64_t n, float rate, uint64_t seed,
                         uint32_t rank, uint64_t step, uint32_t layer) {
  const float scale = 1.0f / (1.0f - rate);
  const PhiloxKey key = philox_key(seed, rank);
  const uint32_t stream = uint32_t(RandomStream::kDropout) + layer;
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const auto r = Philox::generate({uint32_t(b), uint32_t(step), uint32_t(step >> 32), stream},
                                    key.k0, key.k1);
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) {
      const int64_t i = b * 4 + j;
      out[i] = Philox::to_unit(r[j]) >= rate ? in[i] * scale : 0.0f;
    }
  }
}

void Dropout::forward(const Tensor& x, Tensor& y, const StepContext& ctx) {
  last_ = ctx;
  if (ctx.mode == Mode::kInfer || rate_ == 0.0f) {
    copy_memory(y.data(), y.on_device(), x.data(), x.on_device(), size_t(x.size()) * sizeof(float));
    return;
  }
#ifdef DPT_WITH_CUDA
  if (x.on_device())
    return apply_mask_cuda(x.data(), y.data(), x.size(), rate_, ctx.seed, ctx.rank, ctx.step, index());
#endif
  apply_mask(x.data(), y.data(), x.size(), rate_, ctx.seed, ctx.rank, ctx.step, index());
}

void Dropout::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  if (last_.mode == Mode::kInfer || rate_ == 0.0f) {
    copy_memory(dx->data(), dx->on_device(), dy.data(), dy.on_device(), size_t(dy.size()) * sizeof(float));
    return;
  }
#ifdef DPT_WITH_CUDA
  if (dy.on_device())
    return apply_mask_cuda(dy.data(), dx->data(), dy.size(), rate_, last_.seed, last_.rank, last_.step, index());
#endif
  apply_mask(dy.data(), dx->data(), dy.size(), rate_, last_.seed, last_.rank, last_.step,
             index());
}

}  // namespace dpt
