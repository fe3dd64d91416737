// Pool2D: max, average and global-average pooling over NHWC input.
#pragma once
#include "core/options.h"
#include "models/layers/act.h"
#include "models/layers/layer.h"
#include "models/layers/window.h"

namespace dpt {

enum class PoolKind { kMax, kAverage, kGlobalAverage };

class Pool2D : public Layer {
 public:
  Pool2D(PoolKind kind, Options& opt);
  std::string type() const override;
  Shape output_shape(const Shape& in) const override;
  Window2D geometry(const Shape& in) const;
  PoolKind kind() const { return kind_; }
  bool padding_same() const { return same_; }
  // Applies act to the pooled output (see Note [relu after pool] in conv2d.h).
  void set_post_activation(Act act) { post_act_ = act; }

 private:
  PoolKind kind_;
  std::pair<int64_t, int64_t> pool_, strides_;
  bool same_ = false;
  Act post_act_ = Act::kLinear;

 public:
  struct CpuState;   // oneDNN primitives per batch size: kernels/cpu/pool2d_cpu.cpp
  struct CudaState;  // cuDNN/cuBLAS descriptors per batch size: kernels/cuda/pool2d_cuda.cu

 private:
  BackendState<CpuState> cpu_;
  BackendState<CudaState> cuda_;
  DPT_OP_KERNELS
};

}  // namespace dpt
