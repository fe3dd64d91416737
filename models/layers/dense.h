// Dense: fully connected layer y = act(x W + b) with Keras' (in, out) kernel layout.
#pragma once
#include <memory>

#include "models/core/options.h"
#include "models/kernels/cpu/activation_cpu.h"
#include "models/layers/layer.h"

namespace dpt {

class Dense : public Layer {
 public:
  explicit Dense(Options& opt);
  std::string type() const override { return "Dense"; }
  Shape output_shape(const Shape& in) const override;
  std::vector<ParamSpec> param_specs(const Shape& in) const override;
  void bind(const std::vector<Param*>& params) override;
  void forward(const Tensor& x, Tensor& y, const StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  int64_t units() const { return units_; }
  Act activation() const { return act_; }

 private:
  int64_t units_;
  bool use_bias_;
  Act act_;
  std::string kernel_init_, bias_init_;
  Param* kernel_p_ = nullptr;
  Param* bias_p_ = nullptr;
 public:
  struct CpuState;  // models/kernels/cpu/dense_cpu.cpp

 private:
  std::unique_ptr<CpuState, BackendDeleter<CpuState>> cpu_;
#ifdef DPT_WITH_CUDA
 public:
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: models/kernels/cuda/dense_cuda.cu

 private:
  void forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx);
  void backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx);
  std::unique_ptr<CudaState, BackendDeleter<CudaState>> cuda_;
#endif
};

}  // namespace dpt
