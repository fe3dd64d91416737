// Activation layer: a standalone relu / sigmoid / tanh / softmax (softmax over the last axis).
#pragma once
#include "models/kernels/cpu/activation_cpu.h"
#include "models/layers/layer.h"

namespace dpt {

class Activation : public Layer {
 public:
  explicit Activation(Act act) : op_(act) {}
  std::string type() const override { return "Activation"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(const Tensor& x, Tensor& y, const StepContext&) override {
    op_.forward(x.data(), y.data(), x.size() / x.shape().back(), x.shape().back(),
                label() + " forward");
  }
  void backward(const Tensor&, const Tensor& y, const Tensor& dy, Tensor* dx) override {
    if (dx)
      op_.backward(y.data(), dy.data(), dx->data(), y.size() / y.shape().back(), y.shape().back(),
                   label() + " backward");
  }
  Act act() const { return op_.act(); }

 private:
  cpu::ActivationCpu op_;
};

}  // namespace dpt
