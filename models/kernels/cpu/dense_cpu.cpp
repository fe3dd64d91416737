// Dense on oneDNN inner product: forward (activation fused unless softmax), backward data and
// weights.
#include <map>

#include "models/kernels/cpu/activation_cpu.h"
#include "models/kernels/cpu/reordered_memory.h"
#include "models/kernels/no_cuda.h"
#include "models/layers/dense.h"

namespace dpt {

using namespace cpu;

struct Dense::CpuState {
  struct Plan {
    dnnl::inner_product_forward fwd;
    dnnl::inner_product_backward_data bwd_data;
    dnnl::inner_product_backward_weights bwd_weights;
    dnnl::memory bias, dst, diff_src, diff_wei, diff_bias, scratch;
    // FP32 user memory, or bfloat16 copies under Note [precision] (made once, used twice).
    ReorderedMemory src, diff_dst, fwd_wei, bwd_wei;
    Tensor dy_pre;
  };
  explicit CpuState(Act a) : act(a) {}
  ActivationCpu act;
  std::map<int64_t, Plan> plans;
};

template <>
void BackendDeleter<Dense::CpuState>::operator()(Dense::CpuState* p) const {
  delete p;
}

void Dense::forward_cpu(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cpu_) cpu_.reset(new CpuState(act_));
  const int64_t n = x.dim(0), k = x.dim(1);
  auto it = cpu_->plans.find(n);
  if (it == cpu_->plans.end()) {
    const auto src_md = nc_md(n, k), dst_md = nc_md(n, units_);
    // Keras stores the kernel as (in, out); oneDNN's logical weights are (out, in): tag io.
    const dnnl::memory::desc wei_md({units_, k}, dt::f32, tag::io);
    const bool bf16 = precision_ == Precision::kBf16;
    const auto csrc_md = bf16 ? nc_md(n, k, dt::bf16) : src_md;
    const auto cdst_md = bf16 ? nc_md(n, units_, dt::bf16) : dst_md;
    const auto cwei_md = bf16 ? dnnl::memory::desc({units_, k}, dt::bf16, tag::any) : wei_md;
    const auto bias_md = use_bias_ ? x_md(units_) : dnnl::memory::desc();
    auto attr = scratchpad_attr();
    if (cpu_->act.fusable()) cpu_->act.add_post_op(attr);
    dnnl::inner_product_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, csrc_md, cwei_md, bias_md, dst_md}, attr, engine());
    const auto battr = scratchpad_attr();
    dnnl::inner_product_backward_data::primitive_desc dpd({src_md, cwei_md, cdst_md}, battr,
                                                          engine(), fpd);
    dnnl::inner_product_backward_weights::primitive_desc wpd({csrc_md, wei_md, bias_md, cdst_md},
                                                             battr, engine(), fpd);
    CpuState::Plan p;
    p.fwd = dnnl::inner_product_forward(fpd);
    p.bwd_data = dnnl::inner_product_backward_data(dpd);
    p.bwd_weights = dnnl::inner_product_backward_weights(wpd);
    for (auto [m, md] : {std::pair{&p.diff_src, src_md}, {&p.dst, dst_md}, {&p.diff_wei, wei_md}})
      *m = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
    p.src.init(src_md, fpd.src_desc(), false);
    p.diff_dst.init(dst_md, dpd.diff_dst_desc(), false);
    p.fwd_wei.init(wei_md, fpd.weights_desc(), false);
    p.bwd_wei.init(wei_md, dpd.weights_desc(), false);
    if (use_bias_) {
      p.bias = dnnl::memory(bias_md, engine(), DNNL_MEMORY_NONE);
      p.diff_bias = dnnl::memory(bias_md, engine(), DNNL_MEMORY_NONE);
    }
    size_t scratch = 0;
    for (const auto& d : {fpd.scratchpad_desc(), dpd.scratchpad_desc(), wpd.scratchpad_desc()})
      scratch = std::max(scratch, d.get_size());
    p.scratch = make_scratchpad(dnnl::memory::desc({int64_t(scratch)}, dt::u8, tag::x));
    if (act_ != Act::kLinear) p.dy_pre = Tensor(y.shape());
    it = cpu_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = it->second;
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, p.src.input(x.data(), label())},
      {DNNL_ARG_WEIGHTS, p.fwd_wei.input(kernel_p_->value, label())},
      {DNNL_ARG_DST, with_data(p.dst, y.data())},
      {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (use_bias_) args[DNNL_ARG_BIAS] = with_data(p.bias, bias_p_->value);
  execute(p.fwd, args, label() + " forward");
  if (!cpu_->act.fusable()) cpu_->act.forward(y.data(), y.data(), n, units_, label() + " softmax");
}

void Dense::backward_cpu(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  auto& p = cpu_->plans.at(x.dim(0));
  const float* g = dy.data();
  if (act_ != Act::kLinear) {
    cpu_->act.backward(y.data(), dy.data(), p.dy_pre.data(), x.dim(0), units_,
                       label() + " activation backward");
    g = p.dy_pre.data();
  }
  const dnnl::memory diff_dst = p.diff_dst.input(g, label());
  std::unordered_map<int, dnnl::memory> wargs{
      {DNNL_ARG_SRC, p.src.last_input(x.data())},
      {DNNL_ARG_DIFF_DST, diff_dst},
      {DNNL_ARG_DIFF_WEIGHTS, with_data(p.diff_wei, kernel_p_->grad)},
      {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (use_bias_) wargs[DNNL_ARG_DIFF_BIAS] = with_data(p.diff_bias, bias_p_->grad);
  execute(p.bwd_weights, wargs, label() + " backward weights");
  if (dx) {
    execute(p.bwd_data,
            {{DNNL_ARG_DIFF_DST, diff_dst},
             {DNNL_ARG_WEIGHTS, p.bwd_wei.input(kernel_p_->value, label())},
             {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx->data())},
             {DNNL_ARG_SCRATCHPAD, p.scratch}},
            label() + " backward data");
  }
}

// The GPU side of a CPU-only build (kernels/cuda/dense_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(Dense)
DPT_NO_CUDA_STATE(Dense)

}  // namespace dpt
