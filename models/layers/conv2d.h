// Conv2D: 2-D convolution over NHWC input with an HWIO kernel, bias and a fused activation.
#pragma once
#include "core/options.h"
#include "models/layers/act.h"
#include "models/layers/layer.h"
#include "models/layers/window.h"

namespace dpt {

class Conv2D : public Layer {
 public:
  explicit Conv2D(Options& opt);
  std::string type() const override { return "Conv2D"; }
  Shape output_shape(const Shape& in) const override;
  double forward_flops(const Shape& in) const override;
  std::vector<ParamSpec> param_specs(const Shape& in) const override;
  void bind(const std::vector<Param*>& params) override;

  Window2D geometry(const Shape& in) const;
  int64_t filters() const { return filters_; }
  Act activation() const { return act_; }
  // Note [relu after pool]: max(relu(x)) == relu(max(x)) exactly, so for conv -> relu -> max_pool
  // the Model moves the relu behind the pool, where its backward touches a quarter of the data.
  void defer_activation() { deferred_ = true; }
  Act applied_activation() const { return deferred_ ? Act::kLinear : act_; }
  bool use_bias() const { return use_bias_; }
  bool padding_same() const { return same_; }
  // trainable: false freezes kernel and bias (Keras' layer.trainable): they live with the
  // non-trainable state, get no gradient and no update (a whitening layer, models/whitening.h).
  bool trainable() const { return trainable_; }
  const std::string& kernel_initializer() const { return kernel_init_; }

 private:
  int64_t filters_;
  std::pair<int64_t, int64_t> kernel_, strides_;
  bool same_, use_bias_;
  Act act_;
  bool trainable_;
  bool deferred_ = false;
  std::string kernel_init_, bias_init_;
  Param* kernel_p_ = nullptr;
  Param* bias_p_ = nullptr;

 public:
  struct CpuState;   // oneDNN primitives per batch size: kernels/cpu/conv2d_cpu.cpp
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: kernels/cuda/conv2d_cuda.cu

 private:
  BackendState<CpuState> cpu_;
  BackendState<CudaState> cuda_;
  DPT_OP_KERNELS
};

}  // namespace dpt
