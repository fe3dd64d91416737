// BatchNormalization: options and the four Keras parameters (two trainable, two statistics).
#include "models/layers/batch_norm.h"

namespace dpt {

BatchNorm::BatchNorm(Options& opt)
    : momentum_(float(opt.get_double_in("momentum", 0.99, 0.0, 1.0))),
      epsilon_(float(opt.get_double_in("epsilon", 1e-3, 1e-12, 1.0))),
      scale_(opt.get_bool("scale", true)) {}

std::vector<ParamSpec> BatchNorm::param_specs(const Shape& in) const {
  DPT_CHECK(in.size() == 3 || in.size() == 1,
            label() << " expects (H, W, C) or (F) input, got " << shape_str(in));
  const int64_t c = in.back();
  // scale: false (Keras' option): gamma stays 1, a non-trainable parameter, so that
  // checkpoints and exports keep the one layout.
  return {{"gamma", {c}, scale_, "ones", 0, 0},
          {"beta", {c}, true, "zeros", 0, 0},
          {"moving_mean", {c}, false, "zeros", 0, 0},
          {"moving_variance", {c}, false, "ones", 0, 0}};
}

void BatchNorm::bind(const std::vector<Param*>& params) {
  gamma_ = params.at(0);
  beta_ = params.at(1);
  moving_mean_ = params.at(2);
  moving_var_ = params.at(3);
}

}  // namespace dpt
