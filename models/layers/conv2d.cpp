// Conv2D: options, output shape and parameters; the oneDNN kernels live in
// kernels/cpu/conv2d_cpu.cpp.
#include "models/layers/conv2d.h"

namespace dpt {

Conv2D::Conv2D(Options& opt)
    : filters_(opt.require_int("filters", 1)),
      kernel_(opt.get_pair("kernel", 0, 1)),
      strides_(opt.get_pair("strides", 1, 1)),
      same_(opt.get_choice("padding", "valid", {"valid", "same"}) == "same"),
      use_bias_(opt.get_bool("use_bias", true)),
      act_(parse_activation(opt.get_string("activation", "linear"), opt.at("activation"))),
      trainable_(opt.get_bool("trainable", true)),
      kernel_init_(opt.get_string("kernel_initializer", "glorot_uniform")),
      bias_init_(opt.get_string("bias_initializer", "zeros")) {
  DPT_CHECK(kernel_.first > 0, "config key " << opt.key_path("kernel") << " is required");
  DPT_CHECK(act_ != Act::kSoftmax, opt.at("activation")
                                       << ": softmax over channels is not supported in conv2d");
  DPT_CHECK(
      act_ != Act::kGelu, opt.at("activation")
                              << ": gelu is a layer of its own "
                                 "(its backward needs its input); add '- gelu: {}' after this one");
}

Window2D Conv2D::geometry(const Shape& in) const {
  DPT_CHECK(in.size() == 3, label() << " expects an (H, W, C) input, got " << shape_str(in));
  return window_2d(in[0], in[1], kernel_, strides_, same_, label());
}

Shape Conv2D::output_shape(const Shape& in) const {
  const Window2D g = geometry(in);
  return {g.h.out, g.w.out, filters_};
}

double Conv2D::forward_flops(const Shape& in) const {
  const Shape out = output_shape(in);
  return 2.0 * double(out[0] * out[1] * filters_) * double(kernel_.first * kernel_.second * in[2]);
}

std::vector<ParamSpec> Conv2D::param_specs(const Shape& in) const {
  const int64_t cin = in.at(2), kh = kernel_.first, kw = kernel_.second;
  std::vector<ParamSpec> specs{{"kernel",
                                {kh, kw, cin, filters_},
                                trainable_,
                                kernel_init_,
                                kh * kw * cin,
                                kh * kw * filters_}};
  if (use_bias_) specs.push_back({"bias", {filters_}, trainable_, bias_init_, 0, 0});
  return specs;
}

void Conv2D::bind(const std::vector<Param*>& params) {
  kernel_p_ = params.at(0);
  bias_p_ = use_bias_ ? params.at(1) : nullptr;
}

}  // namespace dpt
