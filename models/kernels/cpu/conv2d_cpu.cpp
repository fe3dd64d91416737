// Conv2D on oneDNN: forward (activation fused as a post-op), backward data and backward weights.
#include <map>

#include "models/layers/conv2d.h"

namespace dpt {

using namespace cpu;

struct Conv2D::CpuState {
  struct Plan {
    dnnl::convolution_forward fwd;
    dnnl::convolution_backward_data bwd_data;
    dnnl::convolution_backward_weights bwd_weights;
    dnnl::memory src, wei, bias, dst, diff_dst, diff_src, diff_wei, diff_bias, scratch;
    Tensor dy_pre;  // dy pulled back through the fused activation
  };
  explicit CpuState(Act a) : act(a) {}
  ActivationCpu act;
  std::map<int64_t, Plan> plans;  // by batch size
};

template <>
void BackendDeleter<Conv2D::CpuState>::operator()(Conv2D::CpuState* p) const {
  delete p;
}

namespace {
size_t max_size(std::initializer_list<dnnl::memory::desc> mds) {
  size_t m = 0;
  for (const auto& d : mds) m = std::max(m, d.get_size());
  return m;
}
}  // namespace

void Conv2D::forward(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cpu_) cpu_.reset(new CpuState(act_));
  const int64_t n = x.dim(0);
  auto it = cpu_->plans.find(n);
  if (it == cpu_->plans.end()) {
    const Window2D g = geometry({x.dim(1), x.dim(2), x.dim(3)});
    const int64_t cin = x.dim(3);
    const auto src_md = nhwc_md(x.shape());
    const auto dst_md = nhwc_md(y.shape());
    const dnnl::memory::desc wei_md({filters_, cin, g.kh, g.kw}, dt::f32, tag::hwio);
    const auto bias_md = use_bias_ ? x_md(filters_) : dnnl::memory::desc();
    const dnnl::memory::dims strides{g.sh, g.sw}, pad_l{g.h.pad_lo, g.w.pad_lo},
        pad_r{g.h.pad_hi, g.w.pad_hi};
    auto attr = scratchpad_attr();
    cpu_->act.add_post_op(attr);
    const auto algo = dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, algo, src_md, wei_md, bias_md, dst_md, strides, pad_l,
         pad_r}, attr, engine());
    const auto battr = scratchpad_attr();
    dnnl::convolution_backward_data::primitive_desc dpd(
        {algo, src_md, wei_md, dst_md, strides, pad_l, pad_r}, battr, engine(), fpd);
    dnnl::convolution_backward_weights::primitive_desc wpd(
        {algo, src_md, wei_md, bias_md, dst_md, strides, pad_l, pad_r}, battr, engine(), fpd);
    CpuState::Plan p;
    p.fwd = dnnl::convolution_forward(fpd);
    p.bwd_data = dnnl::convolution_backward_data(dpd);
    p.bwd_weights = dnnl::convolution_backward_weights(wpd);
    for (auto [m, md] : {std::pair{&p.src, src_md}, {&p.diff_src, src_md}, {&p.dst, dst_md},
                         {&p.diff_dst, dst_md}, {&p.wei, wei_md}, {&p.diff_wei, wei_md}})
      *m = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
    if (use_bias_) {
      p.bias = dnnl::memory(bias_md, engine(), DNNL_MEMORY_NONE);
      p.diff_bias = dnnl::memory(bias_md, engine(), DNNL_MEMORY_NONE);
    }
    const size_t scratch = max_size({fpd.scratchpad_desc(), dpd.scratchpad_desc(),
                                     wpd.scratchpad_desc()});
    p.scratch = make_scratchpad(dnnl::memory::desc({int64_t(scratch)}, dt::u8, tag::x));
    if (act_ != Act::kLinear) p.dy_pre = Tensor(y.shape());
    it = cpu_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = it->second;
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, with_data(p.src, x.data())},
                                             {DNNL_ARG_WEIGHTS, with_data(p.wei, kernel_p_->value)},
                                             {DNNL_ARG_DST, with_data(p.dst, y.data())},
                                             {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (use_bias_) args[DNNL_ARG_BIAS] = with_data(p.bias, bias_p_->value);
  execute(p.fwd, args, label() + " forward");
}

void Conv2D::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  auto& p = cpu_->plans.at(x.dim(0));
  const float* g = dy.data();
  if (act_ != Act::kLinear) {
    cpu_->act.backward(y.data(), dy.data(), p.dy_pre.data(), y.size() / filters_, filters_,
                       label() + " activation backward");
    g = p.dy_pre.data();
  }
  std::unordered_map<int, dnnl::memory> wargs{{DNNL_ARG_SRC, with_data(p.src, x.data())},
                                              {DNNL_ARG_DIFF_DST, with_data(p.diff_dst, g)},
                                              {DNNL_ARG_DIFF_WEIGHTS,
                                               with_data(p.diff_wei, kernel_p_->grad)},
                                              {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (use_bias_) wargs[DNNL_ARG_DIFF_BIAS] = with_data(p.diff_bias, bias_p_->grad);
  execute(p.bwd_weights, wargs, label() + " backward weights");
  if (dx) {
    execute(p.bwd_data, {{DNNL_ARG_DIFF_DST, with_data(p.diff_dst, g)},
                         {DNNL_ARG_WEIGHTS, with_data(p.wei, kernel_p_->value)},
                         {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx->data())},
                         {DNNL_ARG_SCRATCHPAD, p.scratch}},
            label() + " backward data");
  }
}

}  // namespace dpt
