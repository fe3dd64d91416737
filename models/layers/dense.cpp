// Dense: options, output shape and parameters; the oneDNN kernels live in
// kernels/cpu/dense_cpu.cpp.
#include "models/layers/dense.h"

namespace dpt {

Dense::Dense(Options& opt)
    : units_(opt.require_int("units", 1)),
      use_bias_(opt.get_bool("use_bias", true)),
      act_(parse_activation(opt.get_string("activation", "linear"), opt.at("activation"))),
      kernel_init_(opt.get_string("kernel_initializer", "glorot_uniform")),
      bias_init_(opt.get_string("bias_initializer", "zeros")) {
  DPT_CHECK(
      act_ != Act::kGelu, opt.at("activation")
                              << ": gelu is a layer of its own "
                                 "(its backward needs its input); add '- gelu: {}' after this one");
}

double Dense::forward_flops(const Shape& in) const { return 2.0 * double(in.at(0) * units_); }

Shape Dense::output_shape(const Shape& in) const {
  DPT_CHECK(in.size() == 1, label() << " expects a flat input but gets " << shape_str(in, true)
                                    << "; add 'flatten: {}' before it");
  return {units_};
}

std::vector<ParamSpec> Dense::param_specs(const Shape& in) const {
  std::vector<ParamSpec> specs{
      {"kernel", {in.at(0), units_}, true, kernel_init_, in.at(0), units_}};
  if (use_bias_) specs.push_back({"bias", {units_}, true, bias_init_, 0, 0});
  return specs;
}

void Dense::bind(const std::vector<Param*>& params) {
  kernel_p_ = params.at(0);
  bias_p_ = use_bias_ ? params.at(1) : nullptr;
}

}  // namespace dpt
