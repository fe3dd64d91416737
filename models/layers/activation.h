// Activation layer: a standalone relu / sigmoid / tanh / softmax (softmax over the last axis).
#pragma once
#include "models/layers/act.h"
#include "models/layers/layer.h"

namespace dpt {

class Activation : public Layer {
 public:
  explicit Activation(Act act) : act_(act) {}
  std::string type() const override { return "Activation"; }
  Shape output_shape(const Shape& in) const override { return in; }
  Act act() const { return act_; }

 private:
  Act act_;

 public:
  struct CpuState;   // the oneDNN eltwise/softmax primitives: kernels/cpu/activation_cpu.cpp
  struct CudaState;  // the cuDNN descriptors: kernels/cuda/activation_cuda.cu

 private:
  BackendState<CpuState> cpu_;
  BackendState<CudaState> cuda_;
  DPT_OP_KERNELS
};

}  // namespace dpt
