// Element-wise activations on oneDNN eltwise/softmax primitives, cached per shape.
#include "models/kernels/cpu/activation_cpu.h"
#include "models/kernels/no_cuda.h"
#include "models/layers/activation.h"

namespace dpt {

namespace cpu {
namespace {
using alg = dnnl::algorithm;
alg forward_alg(Act a) {
  switch (a) {
    case Act::kRelu:
      return alg::eltwise_relu;
    case Act::kSigmoid:
      return alg::eltwise_logistic;
    case Act::kTanh:
      return alg::eltwise_tanh;
    case Act::kGelu:
      return alg::eltwise_gelu_erf;
    default:
      DPT_ASSERT(false);
  }
}
// The algorithm of the primitives: backward from y where it can be, from x for gelu.
alg use_dst_alg(Act a) {
  switch (a) {
    case Act::kRelu:
      return alg::eltwise_relu_use_dst_for_bwd;
    case Act::kSigmoid:
      return alg::eltwise_logistic_use_dst_for_bwd;
    case Act::kTanh:
      return alg::eltwise_tanh_use_dst_for_bwd;
    case Act::kGelu:
      return alg::eltwise_gelu_erf;
    default:
      DPT_ASSERT(false);
  }
}
}  // namespace

void ActivationCpu::add_post_op(dnnl::primitive_attr& attr) const {
  if (act_ == Act::kLinear) return;
  DPT_ASSERT(fusable());
  dnnl::post_ops ops;
  ops.append_eltwise(1.0f, forward_alg(act_), 0.0f, 0.0f);
  attr.set_post_ops(ops);
}

ActivationCpu::Plan& ActivationCpu::plan(int64_t rows, int64_t cols) {
  auto it = plans_.find({rows, cols});
  if (it != plans_.end()) return it->second;
  Plan p;
  const auto md = nc_md(rows, cols);
  const auto attr = scratchpad_attr();
  dnnl::memory::desc scratch_md;
  if (act_ == Act::kSoftmax) {
    dnnl::softmax_forward::primitive_desc fpd({dnnl::prop_kind::forward_training, md, 1}, attr,
                                              engine());
    dnnl::softmax_backward::primitive_desc bpd({md, md, 1}, attr, engine(), fpd);
    p.fwd = dnnl::softmax_forward(fpd);
    p.bwd = dnnl::softmax_backward(bpd);
    scratch_md = fpd.scratchpad_desc().get_size() > bpd.scratchpad_desc().get_size()
                     ? fpd.scratchpad_desc()
                     : bpd.scratchpad_desc();
  } else {
    dnnl::eltwise_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, use_dst_alg(act_), md, 0.0f, 0.0f}, attr, engine());
    dnnl::eltwise_backward::primitive_desc bpd({use_dst_alg(act_), md, md, 0.0f, 0.0f}, attr,
                                               engine(), fpd);
    p.fwd = dnnl::eltwise_forward(fpd);
    p.bwd = dnnl::eltwise_backward(bpd);
    scratch_md = fpd.scratchpad_desc().get_size() > bpd.scratchpad_desc().get_size()
                     ? fpd.scratchpad_desc()
                     : bpd.scratchpad_desc();
  }
  for (auto* m : {&p.src, &p.dst, &p.diff_dst, &p.diff_src})
    *m = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
  p.scratch = make_scratchpad(scratch_md);
  return plans_.emplace(std::make_pair(rows, cols), std::move(p)).first->second;
}

void ActivationCpu::forward(const float* x, float* y, int64_t rows, int64_t cols,
                            const std::string& where) {
  if (act_ == Act::kLinear) {
    if (x != y) std::copy(x, x + rows * cols, y);
    return;
  }
  Plan& p = plan(rows, cols);
  execute(p.fwd,
          {{DNNL_ARG_SRC, with_data(p.src, x)},
           {DNNL_ARG_DST, with_data(p.dst, y)},
           {DNNL_ARG_SCRATCHPAD, p.scratch}},
          where);
}

void ActivationCpu::backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                             const std::string& where, const float* x) {
  if (act_ == Act::kLinear) {
    if (dy != dx) std::copy(dy, dy + rows * cols, dx);
    return;
  }
  Plan& p = plan(rows, cols);
  if (act_ == Act::kGelu) {
    DPT_ASSERT(x);
    execute(p.bwd,
            {{DNNL_ARG_SRC, with_data(p.src, x)},
             {DNNL_ARG_DIFF_DST, with_data(p.diff_dst, dy)},
             {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx)},
             {DNNL_ARG_SCRATCHPAD, p.scratch}},
            where);
    return;
  }
  execute(p.bwd,
          {{DNNL_ARG_DST, with_data(p.dst, y)},
           {DNNL_ARG_DIFF_DST, with_data(p.diff_dst, dy)},
           {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx)},
           {DNNL_ARG_SCRATCHPAD, p.scratch}},
          where);
}

}  // namespace cpu
}  // namespace dpt

// The Activation layer's kernels: an (N, C) view of the input, C its last axis.
namespace dpt {

struct Activation::CpuState {
  explicit CpuState(Act a) : op(a) {}
  cpu::ActivationCpu op;
};

template <>
void BackendDeleter<Activation::CpuState>::operator()(Activation::CpuState* p) const {
  delete p;
}

void Activation::forward_cpu(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cpu_) cpu_.reset(new CpuState(act_));
  const int64_t cols = x.shape().back(), rows = x.size() / cols;
  cpu_->op.forward(x.data(), y.data(), rows, cols, label() + " forward");
}

void Activation::backward_cpu(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  const int64_t cols = y.shape().back(), rows = y.size() / cols;
  cpu_->op.backward(y.data(), dy.data(), dx->data(), rows, cols, label() + " backward", x.data());
}

// The GPU side of a CPU-only build (kernels/cuda/activation_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(Activation)
DPT_NO_CUDA_STATE(Activation)

}  // namespace dpt
