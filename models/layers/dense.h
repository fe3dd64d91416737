// Dense: fully connected layer y = act(x W + b) with Keras' (in, out) kernel layout.
#pragma once
#include "core/options.h"
#include "models/layers/act.h"
#include "models/layers/layer.h"

namespace dpt {

class Dense : public Layer {
 public:
  explicit Dense(Options& opt);
  std::string type() const override { return "Dense"; }
  Shape output_shape(const Shape& in) const override;
  double forward_flops(const Shape& in) const override;
  std::vector<ParamSpec> param_specs(const Shape& in) const override;
  void bind(const std::vector<Param*>& params) override;
  int64_t units() const { return units_; }
  Act activation() const { return act_; }
  bool use_bias() const { return use_bias_; }

 private:
  int64_t units_;
  bool use_bias_;
  Act act_;
  std::string kernel_init_, bias_init_;
  Param* kernel_p_ = nullptr;
  Param* bias_p_ = nullptr;

 public:
  struct CpuState;   // oneDNN primitives per batch size: kernels/cpu/dense_cpu.cpp
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: kernels/cuda/dense_cuda.cu

 private:
  BackendState<CpuState> cpu_;
  BackendState<CudaState> cuda_;
  DPT_OP_KERNELS
};

}  // namespace dpt
