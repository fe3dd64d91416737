// Dropout (inverted): keeps each unit with probability 1 - rate and scales kept units by 1/(1-rate).
#pragma once
#include "models/core/options.h"
#include "models/layers/layer.h"

namespace dpt {

class Dropout : public Layer {
 public:
  explicit Dropout(Options& opt);
  std::string type() const override { return "Dropout"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y, const StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  float rate() const { return rate_; }

  // The mask is a pure function of (seed, rank, step, layer, element): see Note [random streams].
  // Backward recomputes it instead of storing it.
  static void apply_mask(const float* in, float* out, int64_t n, float rate, uint64_t seed,
                         uint32_t rank, uint64_t step, uint32_t layer);
#ifdef DPT_WITH_CUDA
  // The same mask on the GPU (models/kernels/cuda/dropout_cuda.cu): identical bits.
  static void apply_mask_cuda(const float* in, float* out, int64_t n, float rate, uint64_t seed,
                              uint32_t rank, uint64_t step, uint32_t layer);
#endif

 private:
  float rate_;
  StepContext last_{};
};

}  // namespace dpt
