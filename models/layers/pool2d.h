// Pool2D: max, average and global-average pooling over NHWC input.
#pragma once
#include <memory>

#include "models/core/options.h"
#include "models/kernels/cpu/activation_cpu.h"
#include "models/layers/layer.h"
#include "models/layers/window.h"

namespace dpt {

enum class PoolKind { kMax, kAverage, kGlobalAverage };

class Pool2D : public Layer {
 public:
  Pool2D(PoolKind kind, Options& opt);
  std::string type() const override;
  Shape output_shape(const Shape& in) const override;
  void forward(const Tensor& x, Tensor& y, const StepContext& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  Window2D geometry(const Shape& in) const;
  PoolKind kind() const { return kind_; }
  // Applies act to the pooled output (see Note [relu after pool] in conv2d.h).
  void set_post_activation(Act act) { post_act_ = act; }

 private:
  PoolKind kind_;
  std::pair<int64_t, int64_t> pool_, strides_;
  bool same_ = false;
  Act post_act_ = Act::kLinear;
 public:
  struct CpuState;  // models/kernels/cpu/pool2d_cpu.cpp

 private:
  std::unique_ptr<CpuState, BackendDeleter<CpuState>> cpu_;
#ifdef DPT_WITH_CUDA
 public:
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: models/kernels/cuda/pool2d_cuda.cu

 private:
  void forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx);
  void backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx);
  std::unique_ptr<CudaState, BackendDeleter<CudaState>> cuda_;
#endif
};

}  // namespace dpt
