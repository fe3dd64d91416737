// Conv2D on oneDNN: forward (activation fused as a post-op), backward data and backward weights;
// or on im2col + SGEMM where the CPU chooses it (Note [own conv GEMM]).
#include <map>
#include <memory>

#include "core/trace.h"
#include "models/kernels/cpu/activation_cpu.h"
#include "models/kernels/cpu/conv_gemm.h"
#include "models/kernels/cpu/reordered_memory.h"
#include "models/kernels/no_cuda.h"
#include "models/layers/conv2d.h"

namespace dpt {

using namespace cpu;

struct Conv2D::CpuState {
  struct Plan {
    dnnl::convolution_forward fwd;
    dnnl::convolution_backward_data bwd_data;
    dnnl::convolution_backward_weights bwd_weights;
    dnnl::memory bias, dst, diff_src, diff_bias, scratch;
    // The input and the output gradient as the primitives take them: the same FP32 NHWC
    // memory, or (Note [precision]) a bfloat16 copy made once per step and used twice.
    ReorderedMemory src, diff_dst;
    Tensor dy_pre;  // dy pulled back through the fused activation
    // Note [blocked weights]: the kernel is stored HWIO (Keras' layout) in the flat buffer,
    // but oneDNN's fast convolutions want a blocked weight layout; with plain HWIO it falls
    // back to im2col+GEMM, 2-4x slower here. The weights are small, so they are reordered
    // into the primitive's layout each step and the gradient reordered back.
    ReorderedMemory fwd_wei, bwd_wei, grad_wei;
    std::unique_ptr<ConvGemm> gemm;  // FP32 where the CPU chooses it: the weight gradient,
    bool gemm_forward = false;       // the forward (no activation or a ReLU) and
    bool gemm_data = false;          // the data gradient where they pay too
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

void Conv2D::forward_cpu(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cpu_) cpu_.reset(new CpuState(applied_activation()));
  const int64_t n = x.dim(0);
  auto it = cpu_->plans.find(n);
  if (it == cpu_->plans.end()) {
    const Window2D g = geometry({x.dim(1), x.dim(2), x.dim(3)});
    const int64_t cin = x.dim(3);
    const auto src_md = nhwc_md(x.shape());
    const auto dst_md = nhwc_md(y.shape());
    const dt cdt = precision_ == Precision::kBf16 ? dt::bf16 : dt::f32;  // what multiplies
    const auto csrc_md = nhwc_md(x.shape(), cdt), cdst_md = nhwc_md(y.shape(), cdt);
    const dnnl::memory::desc wei_md({filters_, cin, g.kh, g.kw}, dt::f32, tag::hwio);
    const dnnl::memory::desc any_wei_md({filters_, cin, g.kh, g.kw}, cdt, tag::any);
    const dnnl::memory::desc any_dwei_md({filters_, cin, g.kh, g.kw}, dt::f32, tag::any);
    const auto bias_md = use_bias_ ? x_md(filters_) : dnnl::memory::desc();
    const dnnl::memory::dims strides{g.sh, g.sw}, pad_l{g.h.pad_lo, g.w.pad_lo},
        pad_r{g.h.pad_hi, g.w.pad_hi};
    auto attr = scratchpad_attr();
    cpu_->act.add_post_op(attr);
    const auto algo = dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, algo, csrc_md, any_wei_md, bias_md, dst_md, strides,
         pad_l, pad_r},
        attr, engine());
    const auto battr = scratchpad_attr();
    dnnl::convolution_backward_data::primitive_desc dpd(
        {algo, src_md, any_wei_md, cdst_md, strides, pad_l, pad_r}, battr, engine(), fpd);
    dnnl::convolution_backward_weights::primitive_desc wpd(
        {algo, csrc_md, any_dwei_md, bias_md, cdst_md, strides, pad_l, pad_r}, battr, engine(),
        fpd);
    CpuState::Plan p;
    p.fwd = dnnl::convolution_forward(fpd);
    p.bwd_data = dnnl::convolution_backward_data(dpd);
    p.bwd_weights = dnnl::convolution_backward_weights(wpd);
    p.dst = dnnl::memory(dst_md, engine(), DNNL_MEMORY_NONE);
    p.diff_src = dnnl::memory(src_md, engine(), DNNL_MEMORY_NONE);
    p.src.init(src_md, csrc_md, false);
    p.diff_dst.init(dst_md, cdst_md, false);
    p.fwd_wei.init(wei_md, fpd.weights_desc(), false);
    p.bwd_wei.init(wei_md, dpd.weights_desc(), false);
    p.grad_wei.init(wei_md, wpd.diff_weights_desc(), true);
    if (use_bias_) {
      p.bias = dnnl::memory(bias_md, engine(), DNNL_MEMORY_NONE);
      p.diff_bias = dnnl::memory(bias_md, engine(), DNNL_MEMORY_NONE);
    }
    const size_t scratch =
        max_size({fpd.scratchpad_desc(), dpd.scratchpad_desc(), wpd.scratchpad_desc()});
    p.scratch = make_scratchpad(dnnl::memory::desc({int64_t(scratch)}, dt::u8, tag::x));
    if (applied_activation() != Act::kLinear) p.dy_pre = Tensor(y.shape());
    const ConvShape shape{n, x.dim(1), x.dim(2), cin, filters_, g, use_bias_};
    if (precision_ != Precision::kBf16 && conv_gemm_own() && conv_gemm_pays(shape)) {
      p.gemm = std::make_unique<ConvGemm>(shape);
      const bool fused = applied_activation() == Act::kLinear || applied_activation() == Act::kRelu;
      p.gemm_forward = fused && conv_gemm_pays_forward_and_data(shape);
      p.gemm_data = conv_gemm_pays_forward_and_data(shape);
    }
    it = cpu_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = it->second;
  if (p.gemm_forward) {
    p.gemm->forward(x.data(), kernel_p_->value, use_bias_ ? bias_p_->value : nullptr, y.data(),
                    applied_activation() == Act::kRelu);
    return;
  }
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, p.src.input(x.data(), label())},
      {DNNL_ARG_WEIGHTS, p.fwd_wei.input(kernel_p_->value, label())},
      {DNNL_ARG_DST, with_data(p.dst, y.data())},
      {DNNL_ARG_SCRATCHPAD, p.scratch}};
  if (use_bias_) args[DNNL_ARG_BIAS] = with_data(p.bias, bias_p_->value);
  execute(p.fwd, args, label() + " forward");
}

void Conv2D::backward_cpu(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  auto& p = cpu_->plans.at(x.dim(0));
  const float* g = dy.data();
  if (applied_activation() != Act::kLinear) {
    trace::Span span("primitive", name(), ": activation");
    cpu_->act.backward(y.data(), dy.data(), p.dy_pre.data(), y.size() / filters_, filters_,
                       label() + " activation backward");
    g = p.dy_pre.data();
  }
  const dnnl::memory diff_dst = p.diff_dst.input(g, label());
  if (trainable_) {  // a frozen kernel (trainable: false) has no gradient to compute
    trace::Span span("primitive", name(), use_bias_ ? ": weights and bias" : ": weights");
    if (p.gemm) {
      p.gemm->weight_grad(x.data(), g, kernel_p_->grad, use_bias_ ? bias_p_->grad : nullptr);
    } else {
      std::unordered_map<int, dnnl::memory> wargs{
          {DNNL_ARG_SRC, p.src.last_input(x.data())},
          {DNNL_ARG_DIFF_DST, diff_dst},
          {DNNL_ARG_DIFF_WEIGHTS, p.grad_wei.output(kernel_p_->grad)},
          {DNNL_ARG_SCRATCHPAD, p.scratch}};
      if (use_bias_) wargs[DNNL_ARG_DIFF_BIAS] = with_data(p.diff_bias, bias_p_->grad);
      execute(p.bwd_weights, wargs, label() + " backward weights");
      p.grad_wei.flush(kernel_p_->grad, label() + " weight-gradient reorder");
    }
  }
  if (dx && p.gemm_data) {
    trace::Span span("primitive", name(), ": data");
    p.gemm->data_grad(g, kernel_p_->value, dx->data());
  } else if (dx) {
    trace::Span span("primitive", name(), ": data");
    execute(p.bwd_data,
            {{DNNL_ARG_DIFF_DST, diff_dst},
             {DNNL_ARG_WEIGHTS, p.bwd_wei.input(kernel_p_->value, label())},
             {DNNL_ARG_DIFF_SRC, with_data(p.diff_src, dx->data())},
             {DNNL_ARG_SCRATCHPAD, p.scratch}},
            label() + " backward data");
  }
}

// The GPU side of a CPU-only build (kernels/cuda/conv2d_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(Conv2D)
DPT_NO_CUDA_STATE(Conv2D)

}  // namespace dpt
