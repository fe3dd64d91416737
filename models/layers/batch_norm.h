// BatchNormalization over the channel (last) axis, Keras semantics: momentum 0.99, epsilon 1e-3.
#pragma once
#include "core/options.h"
#include "models/layers/layer.h"

namespace dpt {

class BatchNorm : public Layer {
 public:
  explicit BatchNorm(Options& opt);
  std::string type() const override { return "BatchNormalization"; }
  Shape output_shape(const Shape& in) const override { return in; }
  std::vector<ParamSpec> param_specs(const Shape& in) const override;
  void bind(const std::vector<Param*>& params) override;
  float momentum() const { return momentum_; }
  float epsilon() const { return epsilon_; }
  bool scale() const { return scale_; }

 private:
  float momentum_, epsilon_;
  bool scale_;
  Param *gamma_ = nullptr, *beta_ = nullptr, *moving_mean_ = nullptr, *moving_var_ = nullptr;

 public:
  struct CpuState;   // oneDNN primitives per batch size: kernels/cpu/batch_norm_cpu.cpp
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: kernels/cuda/batch_norm_cuda.cu

 private:
  BackendState<CpuState> cpu_;
  BackendState<CudaState> cuda_;
  DPT_OP_KERNELS
};

}  // namespace dpt
