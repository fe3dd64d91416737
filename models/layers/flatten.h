// Flatten: (H, W, C) -> (H*W*C) in NHWC order, as Keras flattens; shares its input's storage.
#pragma once
#include "models/layers/layer.h"

namespace dpt {

class Flatten : public Layer {
 public:
  std::string type() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override { return {num_elements(in)}; }
  bool is_reshape() const override { return true; }

 protected:
  // The Model aliases y to x and dx to dy, so no backend has anything to compute.
  void forward_cpu(const Tensor&, Tensor&, const StepContext&) override {}
  void backward_cpu(const Tensor&, const Tensor&, const Tensor&, Tensor*) override {}
  void forward_cuda(const Tensor&, Tensor&, const StepContext&) override {}
  void backward_cuda(const Tensor&, const Tensor&, const Tensor&, Tensor*) override {}
};

}  // namespace dpt
