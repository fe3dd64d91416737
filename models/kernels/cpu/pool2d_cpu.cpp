// Pool2D on the CPU: the own NHWC max-pool kernel where it applies and pays, else oneDNN pooling.
#include <map>
#include <vector>

#include "models/kernels/cpu/activation_cpu.h"
#include "models/kernels/cpu/max_pool_nhwc.h"
#include "models/kernels/no_cuda.h"
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
    // Note [own max-pool kernel]: used instead of the primitives above when `own` is set.
    bool own = false;
    MaxPoolShape own_shape{};
    std::vector<uint8_t> own_ws;  // the winning window position of each output element
  };
  CpuState(PoolKind k, Act a) : kind(k), act(a) {}
  Plan onednn_plan(const Shape& x_shape, const Window2D& g) const;
  PoolKind kind;
  ActivationCpu act;
  std::map<int64_t, Plan> plans;
};

template <>
void BackendDeleter<Pool2D::CpuState>::operator()(Pool2D::CpuState* p) const {
  delete p;
}

Pool2D::CpuState::Plan Pool2D::CpuState::onednn_plan(const Shape& x_shape,
                                                     const Window2D& g) const {
  const int64_t n = x_shape[0];
  const auto src_md = nhwc_md(x_shape);
  const auto dst_md = nhwc_md({n, g.h.out, g.w.out, x_shape[3]});  // (N, C) for global is 1x1
  // Keras' average pooling with padding 'same' divides by the real (unpadded) count.
  const auto algo = kind == PoolKind::kMax ? dnnl::algorithm::pooling_max
                                           : dnnl::algorithm::pooling_avg_exclude_padding;
  const dnnl::memory::dims strides{g.sh, g.sw}, kernel{g.kh, g.kw}, pad_l{g.h.pad_lo, g.w.pad_lo},
      pad_r{g.h.pad_hi, g.w.pad_hi};
  const auto attr = scratchpad_attr();
  dnnl::pooling_forward::primitive_desc fpd(
      {dnnl::prop_kind::forward_training, algo, src_md, dst_md, strides, kernel, pad_l, pad_r},
      attr, engine());
  dnnl::pooling_backward::primitive_desc bpd({algo, src_md, dst_md, strides, kernel, pad_l, pad_r},
                                             attr, engine(), fpd);
  Plan p;
  p.fwd = dnnl::pooling_forward(fpd);
  p.bwd = dnnl::pooling_backward(bpd);
  for (auto [m, md] :
       {std::pair{&p.src, src_md}, {&p.diff_src, src_md}, {&p.dst, dst_md}, {&p.diff_dst, dst_md}})
    *m = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
  p.has_workspace = fpd.workspace_desc().get_size() > 0;
  if (p.has_workspace) p.workspace = dnnl::memory(fpd.workspace_desc(), engine());
  const size_t scratch =
      std::max(fpd.scratchpad_desc().get_size(), bpd.scratchpad_desc().get_size());
  p.scratch = make_scratchpad(dnnl::memory::desc({int64_t(scratch)}, dt::u8, tag::x));
  if (act.act() != Act::kLinear) p.dy_pre = Tensor({n, g.h.out, g.w.out, x_shape[3]});
  return p;
}

namespace {

// Note [own max-pool kernel]: max pooling with non-overlapping windows and no or a ReLU
// post-activation can run on the own kernel, which gives oneDNN's numbers; it does where it is
// the faster one on this CPU.
bool use_own_kernel(PoolKind kind, const Window2D& g, Act post) {
  return kind == PoolKind::kMax && own_max_pool_applies(g) &&
         (post == Act::kLinear || post == Act::kRelu) && max_pool_kernel() == MaxPoolKernel::kOwn;
}

}  // namespace

void Pool2D::forward_cpu(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cpu_) cpu_.reset(new CpuState(kind_, post_act_));
  const int64_t n = x.dim(0);
  auto it = cpu_->plans.find(n);
  if (it == cpu_->plans.end()) {
    const Window2D g = geometry({x.dim(1), x.dim(2), x.dim(3)});
    CpuState::Plan p;
    if (use_own_kernel(kind_, g, post_act_)) {
      p.own = true;
      p.own_shape = {n, x.dim(1), x.dim(2), x.dim(3), g, post_act_ == Act::kRelu};
      p.own_ws.resize(size_t(y.size()));
      it = cpu_->plans.emplace(n, std::move(p)).first;
    } else {
      it = cpu_->plans.emplace(n, cpu_->onednn_plan(x.shape(), g)).first;
    }
  }
  auto& p = it->second;
  if (p.own) {
    max_pool_forward(p.own_shape, x.data(), y.data(), p.own_ws.data());
    return;
  }
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
  if (p.own) {
    max_pool_backward(p.own_shape, y.data(), dy.data(), p.own_ws.data(), dx->data());
    return;
  }
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

// The GPU side of a CPU-only build (kernels/cuda/pool2d_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(Pool2D)
DPT_NO_CUDA_STATE(Pool2D)

}  // namespace dpt
