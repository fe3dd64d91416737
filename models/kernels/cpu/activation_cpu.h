// Element-wise activations on oneDNN: forward, backward from the output, and conv/dense post-ops.
#pragma once
#include <map>
#include <string>

#include "models/kernels/cpu/dnnl_context.h"
#include "models/layers/act.h"

namespace dpt {

namespace cpu {

// relu, sigmoid and tanh: y = f(x); backward uses y (the *_use_dst_for_bwd algorithms), so
// the activation can be fused into the producing conv/dense as a post-op and x never kept.
// softmax is over the last axis of an (N, C) view. gelu's backward reads x instead.
class ActivationCpu {
 public:
  explicit ActivationCpu(Act act) : act_(act) {}
  Act act() const { return act_; }
  // Adds this activation as a post-op (no-op for linear). Softmax cannot be fused.
  void add_post_op(dnnl::primitive_attr& attr) const;
  bool fusable() const { return act_ != Act::kSoftmax && act_ != Act::kGelu; }
  void forward(const float* x, float* y, int64_t rows, int64_t cols, const std::string& where);
  // x is read by gelu only (the others may pass null).
  void backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                const std::string& where, const float* x = nullptr);

 private:
  struct Plan {
    dnnl::primitive fwd, bwd;
    dnnl::memory src, dst, diff_dst, diff_src, scratch;
  };
  Plan& plan(int64_t rows, int64_t cols);
  Act act_;
  std::map<std::pair<int64_t, int64_t>, Plan> plans_;
};

}  // namespace cpu
}  // namespace dpt
