// Pool2D on oneDNN pooling primitives; max pooling keeps oneDNN's workspace for its backward.
#include <map>

#include "models/kernels/cpu/activation_cpu.h"
#include "models/layers/pool2d.h"

namespace dpt {

using namespace cpu;

struct Pool2D::CpuState {
  struct Plan {
    dnnl::pooling_forward fwd;
    dnnl::pooling_backward bwd;
    dnnl::memory src, dst, diff_src, diff_dst, workspace, scratch;
    bool has_workspace = false;
    Tensor dy_pre;  // dy pulled back through the post-activation
  };
  explicit CpuState(Act a) : act(a) {}
  ActivationCpu act;
  std::map<int64_t, Plan> plans;
};

template <>
void BackendDeleter<Pool2D::CpuState>::operator()(Pool2D::CpuState* p) const {
  delete p;
}

void Pool2D::forward_cpu(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cpu_) cpu_.reset(new CpuState(post_act_));
  const int64_t n = x.dim(0);
  auto it = cpu_->plans.find(n);
  if (it == cpu_->plans.end()) {
    const Window2D g = geometry({x.dim(1), x.dim(2), x.dim(3)});
    const auto src_md = nhwc_md(x.shape());
    const auto dst_md = nhwc_md({n, g.h.out, g.w.out, x.dim(3)});  // (N, C) for global is 1x1
    // Keras' average pooling with padding 'same' divides by the real (unpadded) count.
    const auto algo = kind_ == PoolKind::kMax ? dnnl::algorithm::pooling_max
                                              : dnnl::algorithm::pooling_avg_exclude_padding;
    const dnnl::memory::dims strides{g.sh, g.sw}, kernel{g.kh, g.kw},
        pad_l{g.h.pad_lo, g.w.pad_lo}, pad_r{g.h.pad_hi, g.w.pad_hi};
    const auto attr = scratchpad_attr();
    dnnl::pooling_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, algo, src_md, dst_md, strides, kernel, pad_l, pad_r},
        attr, engine());
    dnnl::pooling_backward::primitive_desc bpd(
        {algo, src_md, dst_md, strides, kernel, pad_l, pad_r}, attr, engine(), fpd);
    CpuState::Plan p;
    p.fwd = dnnl::pooling_forward(fpd);
    p.bwd = dnnl::pooling_backward(bpd);
    for (auto [m, md] : {std::pair{&p.src, src_md}, {&p.diff_src, src_md}, {&p.dst, dst_md},
                         {&p.diff_dst, dst_md}})
      *m = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
    p.has_workspace = fpd.workspace_desc().get_size() > 0;
    if (p.has_workspace) p.workspace = dnnl::memory(fpd.workspace_desc(), engine());
    const size_t scratch =
        std::max(fpd.scratchpad_desc().get_size(), bpd.scratchpad_desc().get_size());
    p.scratch = make_scratchpad(dnnl::memory::desc({int64_t(scratch)}, dt::u8, tag::x));
    if (post_act_ != Act::kLinear) p.dy_pre = Tensor(y.shape());
    it = cpu_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = it->second;
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, with_data(p.src, x.data())},
                                             {DNNL_ARG_DST, with_data(p.dst, y.data())},
                                             {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (p.has_workspace) args[DNNL_ARG_WORKSPACE] = p.workspace;
  execute(p.fwd, args, label() + " forward");
  if (post_act_ != Act::kLinear)
    cpu_->act.forward(y.data(), y.data(), y.size() / y.shape().back(), y.shape().back(),
                      label() + " activation");
}

void Pool2D::backward_cpu(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  auto& p = cpu_->plans.at(x.dim(0));
  const float* g = dy.data();
  if (post_act_ != Act::kLinear) {
    cpu_->act.backward(y.data(), dy.data(), p.dy_pre.data(), y.size() / y.shape().back(),
                       y.shape().back(), label() + " activation backward");
    g = p.dy_pre.data();
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DIFF_DST, with_data(p.diff_dst, g)},
                                             {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx->data())},
                                             {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (p.has_workspace) args[DNNL_ARG_WORKSPACE] = p.workspace;
  execute(p.bwd, args, label() + " backward");
}

}  // namespace dpt
