// Rescaling (Keras' layer): y = scale * x + offset, e.g. airbench's 1/9 on the logits.
#pragma once
#include "core/options.h"
#include "models/layers/layer.h"

namespace dpt {

// A fixed multiplier slows what comes before it without touching the optimizer: on logits,
// scale s shrinks their start by s and the last layer's effective learning rate by s^2.
class Rescaling : public Layer {
 public:
  explicit Rescaling(Options& opt)
      : scale_(float(opt.get_double_in("scale", 1.0, -1e6, 1e6))),
        offset_(float(opt.get_double_in("offset", 0.0, -1e6, 1e6))) {
    DPT_CHECK(scale_ != 0.0f, "config key " << opt.key_path("scale") << " must not be 0");
  }
  std::string type() const override { return "Rescaling"; }
  Shape output_shape(const Shape& in) const override { return in; }
  float scale() const { return scale_; }
  float offset() const { return offset_; }

 private:
  float scale_, offset_;
  DPT_OP_KERNELS
};

}  // namespace dpt
