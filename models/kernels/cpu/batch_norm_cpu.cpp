// BatchNormalization on oneDNN: batch statistics in training (then the moving-average update),
// the moving statistics in inference, and the backward pass with gamma/beta gradients.
#include <map>

#include "models/kernels/cpu/dnnl_context.h"
#include "models/kernels/no_cuda.h"
#include "models/layers/batch_norm.h"

namespace dpt {

using namespace cpu;

struct BatchNorm::CpuState {
  struct Plan {
    dnnl::batch_normalization_forward train_fwd, infer_fwd;
    dnnl::batch_normalization_backward bwd;
    dnnl::memory src, dst, diff_src, diff_dst, scale, shift, diff_scale, diff_shift, mean, var,
        run_mean, run_var, scratch;
    Tensor unused_dx, unused_dgamma;
  };
  std::map<int64_t, Plan> plans;
};

template <>
void BackendDeleter<BatchNorm::CpuState>::operator()(BatchNorm::CpuState* p) const {
  delete p;
}

namespace {
// oneDNN sees (N, C) or NHWC data; either way channels are innermost.
dnnl::memory::desc data_md(const Shape& s) {
  return s.size() == 4 ? nhwc_md(s) : nc_md(s[0], s[1]);
}
}  // namespace

void BatchNorm::forward_cpu(const Tensor& x, Tensor& y, const StepContext& ctx) {
  if (!cpu_) cpu_.reset(new CpuState());
  const int64_t n = x.dim(0), c = x.shape().back();
  auto it = cpu_->plans.find(n);
  if (it == cpu_->plans.end()) {
    using nf = dnnl::normalization_flags;
    const auto md = data_md(x.shape());
    const auto attr = scratchpad_attr();
    const auto flags = nf::use_scale | nf::use_shift;
    dnnl::batch_normalization_forward::primitive_desc tpd(
        {dnnl::prop_kind::forward_training, md, epsilon_, flags}, attr, engine());
    dnnl::batch_normalization_forward::primitive_desc ipd(
        {dnnl::prop_kind::forward_inference, md, epsilon_, flags | nf::use_global_stats}, attr,
        engine());
    dnnl::batch_normalization_backward::primitive_desc bpd(
        {dnnl::prop_kind::backward, md, md, epsilon_, flags}, attr, engine(), tpd);
    CpuState::Plan p;
    p.train_fwd = dnnl::batch_normalization_forward(tpd);
    p.infer_fwd = dnnl::batch_normalization_forward(ipd);
    p.bwd = dnnl::batch_normalization_backward(bpd);
    for (auto* m : {&p.src, &p.dst, &p.diff_src, &p.diff_dst})
      *m = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
    for (auto* m : {&p.scale, &p.shift, &p.diff_scale, &p.diff_shift, &p.run_mean, &p.run_var})
      *m = dnnl::memory(x_md(c), engine(), DNNL_MEMORY_NONE);
    p.mean = dnnl::memory(x_md(c), engine());  // batch statistics, kept for backward
    p.var = dnnl::memory(x_md(c), engine());
    size_t scratch = 0;
    for (const auto& d : {tpd.scratchpad_desc(), ipd.scratchpad_desc(), bpd.scratchpad_desc()})
      scratch = std::max(scratch, d.get_size());
    p.scratch = make_scratchpad(dnnl::memory::desc({int64_t(scratch)}, dt::u8, tag::x));
    it = cpu_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = it->second;
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, with_data(p.src, x.data())},
                                             {DNNL_ARG_DST, with_data(p.dst, y.data())},
                                             {DNNL_ARG_SCALE, with_data(p.scale, gamma_->value)},
                                             {DNNL_ARG_SHIFT, with_data(p.shift, beta_->value)},
                                             {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (ctx.mode == Mode::kInfer) {
    args[DNNL_ARG_MEAN] = with_data(p.run_mean, moving_mean_->value);
    args[DNNL_ARG_VARIANCE] = with_data(p.run_var, moving_var_->value);
    execute(p.infer_fwd, args, label() + " inference forward");
    return;
  }
  args[DNNL_ARG_MEAN] = p.mean;
  args[DNNL_ARG_VARIANCE] = p.var;
  execute(p.train_fwd, args, label() + " training forward");
  // Keras: moving = moving * momentum + batch * (1 - momentum), with the biased batch variance.
  const float* bm = static_cast<const float*>(p.mean.get_data_handle());
  const float* bv = static_cast<const float*>(p.var.get_data_handle());
  for (int64_t i = 0; i < c; ++i) {
    moving_mean_->value[i] = moving_mean_->value[i] * momentum_ + bm[i] * (1 - momentum_);
    moving_var_->value[i] = moving_var_->value[i] * momentum_ + bv[i] * (1 - momentum_);
  }
}

void BatchNorm::backward_cpu(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  auto& p = cpu_->plans.at(x.dim(0));
  // oneDNN always produces diff_src; give it scratch when the model does not want it.
  if (!dx && p.unused_dx.empty()) p.unused_dx = Tensor(x.shape());
  if (!dx) dx = &p.unused_dx;
  // scale: false: gamma is frozen at 1 and its gradient goes to scratch.
  if (!gamma_->grad && p.unused_dgamma.empty()) p.unused_dgamma = Tensor({gamma_->size()});
  float* dgamma = gamma_->grad ? gamma_->grad : p.unused_dgamma.data();
  execute(p.bwd,
          {{DNNL_ARG_SRC, with_data(p.src, x.data())},
           {DNNL_ARG_MEAN, p.mean},
           {DNNL_ARG_VARIANCE, p.var},
           {DNNL_ARG_DIFF_DST, with_data(p.diff_dst, dy.data())},
           {DNNL_ARG_SCALE, with_data(p.scale, gamma_->value)},
           // oneDNN 2.6 refuses the backward without SHIFT, although it does not read it.
           {DNNL_ARG_SHIFT, with_data(p.shift, beta_->value)},
           {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx->data())},
           {DNNL_ARG_DIFF_SCALE, with_data(p.diff_scale, dgamma)},
           {DNNL_ARG_DIFF_SHIFT, with_data(p.diff_shift, beta_->grad)},
           {DNNL_ARG_SCRATCHPAD, p.scratch}},
          label() + " backward");
}

// The GPU side of a CPU-only build (kernels/cuda/batch_norm_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(BatchNorm)
DPT_NO_CUDA_STATE(BatchNorm)

}  // namespace dpt
