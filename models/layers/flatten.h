// Flatten: (H, W, C) -> (H*W*C) in NHWC order, as Keras flattens; shares its input's storage.
#pragma once
#include "models/layers/layer.h"

namespace dpt {

class Flatten : public Layer {
 public:
  std::string type() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override { return {num_elements(in)}; }
  bool is_reshape() const override { return true; }
  // The Model aliases y to x and dx to dy, so there is nothing to compute.
  void forward(const Tensor&, Tensor&, const StepContext&) override {}
  void backward(const Tensor&, const Tensor&, const Tensor&, Tensor*) override {}
};

}  // namespace dpt
