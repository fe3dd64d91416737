// BatchNormalization over the channel (last) axis, Keras semantics: momentum 0.99, epsilon 1e-3.
#pragma once
#include <memory>

#include "models/core/options.h"
#include "models/layers/layer.h"

namespace dpt {

class BatchNorm : public Layer {
 public:
  explicit BatchNorm(Options& opt);
  std::string type() const override { return "BatchNormalization"; }
  Shape output_shape(const Shape& in) const override { return in; }
  std::vector<ParamSpec> param_specs(const Shape& in) const override;
  void bind(const std::vector<Param*>& params) override;
  void forward(const Tensor& x, Tensor& y, const StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  float momentum() const { return momentum_; }
  float epsilon() const { return epsilon_; }

 private:
  float momentum_, epsilon_;
  Param *gamma_ = nullptr, *beta_ = nullptr, *moving_mean_ = nullptr, *moving_var_ = nullptr;
 public:
  struct CpuState;  // models/kernels/cpu/batch_norm_cpu.cpp

 private:
  std::unique_ptr<CpuState, BackendDeleter<CpuState>> cpu_;
#ifdef DPT_WITH_CUDA
 public:
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: models/kernels/cuda/batch_norm_cuda.cu

 private:
  void forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx);
  void backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx);
  std::unique_ptr<CudaState, BackendDeleter<CudaState>> cuda_;
#endif
};

}  // namespace dpt
