// Pool2D: options and output shapes (Keras defaults: strides = pool size, padding valid).
#include "models/layers/pool2d.h"

namespace dpt {

Pool2D::Pool2D(PoolKind kind, Options& opt) : kind_(kind) {
  if (kind_ == PoolKind::kGlobalAverage) return;
  pool_ = opt.get_pair("pool", 2, 1);
  strides_ = opt.get_pair("strides", 0, 1);
  if (strides_.first == 0) strides_ = pool_;
  same_ = opt.get_choice("padding", "valid", {"valid", "same"}) == "same";
}

std::string Pool2D::type() const {
  switch (kind_) {
    case PoolKind::kMax:
      return "MaxPooling2D";
    case PoolKind::kAverage:
      return "AveragePooling2D";
    default:
      return "GlobalAveragePooling2D";
  }
}

Window2D Pool2D::geometry(const Shape& in) const {
  DPT_CHECK(in.size() == 3, label() << " expects an (H, W, C) input, got " << shape_str(in));
  if (kind_ == PoolKind::kGlobalAverage)
    return window_2d(in[0], in[1], {in[0], in[1]}, {1, 1}, false, label());
  return window_2d(in[0], in[1], pool_, strides_, same_, label());
}

Shape Pool2D::output_shape(const Shape& in) const {
  const Window2D g = geometry(in);
  if (kind_ == PoolKind::kGlobalAverage) return {in[2]};
  return {g.h.out, g.w.out, in[2]};
}

}  // namespace dpt
