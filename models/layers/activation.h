// Activation layer: a standalone relu / sigmoid / tanh / softmax (softmax over the last axis).
#pragma once
#include <memory>

#include "models/kernels/cpu/activation_cpu.h"
#include "models/layers/layer.h"

namespace dpt {

class Activation : public Layer {
 public:
  explicit Activation(Act act) : op_(act) {}
  std::string type() const override { return "Activation"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y, const StepContext&) override;
  void backward(const Tensor&, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  Act act() const { return op_.act(); }

 private:
  cpu::ActivationCpu op_;
#ifdef DPT_WITH_CUDA
 public:
  struct CudaState;

 private:
  std::unique_ptr<CudaState, BackendDeleter<CudaState>> cuda_;
#endif
};

}  // namespace dpt
