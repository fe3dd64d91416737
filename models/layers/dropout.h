// Dropout (inverted): keeps each unit with probability 1 - rate and scales kept units by
// 1/(1-rate).
#pragma once
#include <cstdint>
#include <vector>

#include "core/options.h"
#include "models/layers/layer.h"

namespace dpt {

// Note [random streams]: the mask is a pure function of (seed, rank, step, layer, element),
// drawn from Philox blocks that the CPU and the GPU kernels compute identically; the GPU's
// backward recomputes it, the CPU's keeps it from forward (Note [kept mask]).
class Dropout : public Layer {
 public:
  explicit Dropout(Options& opt);
  std::string type() const override { return "Dropout"; }
  Shape output_shape(const Shape& in) const override { return in; }
  float rate() const { return rate_; }

 private:
  // In inference, or at rate 0, dropout is the identity (a copy).
  bool passes_through(const StepContext& ctx) const {
    return ctx.mode == Mode::kInfer || rate_ == 0.0f;
  }
  float rate_;
  StepContext last_{};
  std::vector<uint8_t> kept_;  // the CPU's mask of the last forward (Note [kept mask])
  DPT_OP_KERNELS
};

}  // namespace dpt
