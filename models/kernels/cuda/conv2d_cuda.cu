// Conv2D on cuDNN: the GPU twin of models/kernels/cpu/conv2d_cpu.cpp (same signature, same math).
#include <algorithm>
#include <initializer_list>
#include <map>

#include "core/trace.h"
#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/kernels/cuda/elementwise.cuh"
#include "models/layers/conv2d.h"

namespace dpt {

using namespace cuda;

// Note [cuda conv layouts]: activations are NHWC as on the CPU; cuDNN takes filters as KRSC
// (its NHWC filter format), so the HWIO kernel of the flat buffer is transposed into KRSC each
// step and the filter gradient transposed back, as the CPU path reorders into oneDNN's layout.
// cuDNN pads symmetrically only; TF/Keras 'same' may pad one more row at the bottom, so such
// inputs are padded explicitly and the convolution runs unpadded.
struct Conv2D::CudaState {
  struct Plan {
    TensorDesc x, y, bias, y32;  // x, y in the compute type; y32 the FP32 output
    cudnnFilterDescriptor_t w = nullptr;
    // One convolution descriptor per pass: each carries the math type of the algorithm chosen
    // for it (Note [conv algorithms]).
    cudnnConvolutionDescriptor_t conv = nullptr, conv_data = nullptr, conv_filter = nullptr;
    cudnnConvolutionFwdAlgo_t fwd_algo{};
    cudnnConvolutionBwdDataAlgo_t bwd_data_algo{};
    cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo{};
    Tensor workspace, w_krsc, dw_krsc, dy_pre, x_pad, dx_pad;
    // Note [precision] on the GPU: bfloat16 copies of x, the KRSC kernel, y, dy, dx and dw
    // (cuDNN's pseudo-bf16 configuration: bf16 tensors, FP32 accumulation).
    Bf16Buffer x16, w16, y16, dy16, dx16, dw16;
    bool bf16 = false;
    bool explicit_pad = false;
    int64_t ph = 0, pw = 0;  // padded input size when explicit_pad
    ~Plan() {
      if (w) cudnnDestroyFilterDescriptor(w);
      for (auto d : {conv, conv_data, conv_filter})
        if (d) cudnnDestroyConvolutionDescriptor(d);
    }
  };
  explicit CudaState(Act a) : act(a) {}
  static std::unique_ptr<Plan> make_plan(const Conv2D& c, const Shape& x, const Shape& y);
  ActivationCuda act;
  std::map<int64_t, std::unique_ptr<Plan>> plans;
};

template <>
void BackendDeleter<Conv2D::CudaState>::operator()(Conv2D::CudaState* p) const {
  delete p;
}

namespace {
// Note [conv algorithms]: the heuristics' list is ranked by expected speed; take the first
// entry that succeeded, is deterministic (so CPU/GPU and resume comparisons mean something)
// and is not an FFT or Winograd variant (their rounding differs most from the CPU's direct
// convolution). In fp32 only entries of the descriptor's FMA math qualify (CUDNN_DEFAULT_MATH
// may use TF32 tensor cores on Ampere and later); in bf16 and tf32 any math type does, and the
// pass's descriptor then takes the chosen entry's, so that what runs is what was ranked. No
// qualifying entry (e.g. no deterministic FP32 NHWC backward-filter algorithm for a shape) is
// an error naming the layer and the pass, before the first step.
template <typename Perf, typename Algo>
Perf pick_algorithm(const Perf* perf, int count, std::initializer_list<Algo> excluded,
                    const std::string& what, bool tensor_cores) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (!tensor_cores && p.mathType != CUDNN_FMA_MATH) continue;
    if (std::find(excluded.begin(), excluded.end(), p.algo) != excluded.end()) continue;
    return p;
  }
  DPT_FAIL("cuDNN offers no deterministic "
           << (tensor_cores ? "" : "plain-FP32 ") << "algorithm for " << what << " (" << count
           << " candidates): this convolution cannot run on this GPU in this precision; use "
              "train.backend: cpu, another train.precision, or change the layer's shape");
}

// Algorithms chosen once per shape by cuDNN's heuristics (Note [conv algorithms]); one
// workspace for all three.
template <typename Plan>
void choose_algorithms(Plan& p, bool tensor_cores, const std::string& label) {
  int got = 0;
  cudnnConvolutionFwdAlgoPerf_t fperf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  DPT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
      cudnn(), p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, fperf));
  const auto f = pick_algorithm(
      fperf, got,
      {CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
       CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED},
      label + " forward", tensor_cores);
  cudnnConvolutionBwdDataAlgoPerf_t dperf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  DPT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      cudnn(), p.w, p.y, p.conv_data, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, dperf));
  const auto d = pick_algorithm(
      dperf, got,
      {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
       CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED},
      label + " backward data", tensor_cores);
  cudnnConvolutionBwdFilterAlgoPerf_t wperf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  DPT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      cudnn(), p.x, p.y, p.conv_filter, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, wperf));
  const auto w = pick_algorithm(
      wperf, got,
      {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
       CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED},
      label + " backward filter", tensor_cores);
  p.fwd_algo = f.algo;
  p.bwd_data_algo = d.algo;
  p.bwd_filter_algo = w.algo;
  DPT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, f.mathType));
  DPT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv_data, d.mathType));
  DPT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv_filter, w.mathType));
  size_t a = 0, b = 0, c = 0;
  DPT_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(cudnn(), p.x, p.w, p.conv, p.y, p.fwd_algo, &a));
  DPT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn(), p.w, p.y, p.conv_data, p.x,
                                                               p.bwd_data_algo, &b));
  DPT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn(), p.x, p.y, p.conv_filter,
                                                                 p.w, p.bwd_filter_algo, &c));
  p.workspace = Tensor({int64_t(std::max({a, b, c, size_t(4)}) / 4 + 1)}, Device::kCuda);
}

}  // namespace

// The descriptors, algorithms and buffers of one batch size (Caffe's Reshape).
std::unique_ptr<Conv2D::CudaState::Plan> Conv2D::CudaState::make_plan(const Conv2D& c,
                                                                      const Shape& x,
                                                                      const Shape& y) {
  const int64_t n = x[0], h = x[1], w = x[2], cin = x[3];
  auto p = std::make_unique<Plan>();
  const Window2D g = c.geometry({h, w, cin});
  p->explicit_pad = g.h.pad_lo != g.h.pad_hi || g.w.pad_lo != g.w.pad_hi;
  p->ph = p->explicit_pad ? h + g.h.pad_lo + g.h.pad_hi : h;
  p->pw = p->explicit_pad ? w + g.w.pad_lo + g.w.pad_hi : w;
  p->bf16 = c.precision_ == Precision::kBf16;
  const cudnnDataType_t io = p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  p->x.nhwc(n, p->ph, p->pw, cin, io);
  p->y.nhwc(n, g.h.out, g.w.out, c.filters_, io);
  p->y32.nhwc(n, g.h.out, g.w.out, c.filters_);
  p->bias.nhwc(1, 1, 1, c.filters_);
  DPT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  DPT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, io, CUDNN_TENSOR_NHWC, int(c.filters_), int(cin),
                                             int(g.kh), int(g.kw)));
  const int pad_h = p->explicit_pad ? 0 : int(g.h.pad_lo),
            pad_w = p->explicit_pad ? 0 : int(g.w.pad_lo);
  // fp32: plain FP32 arithmetic (no TF32), so results stay comparable with the CPU path;
  // bf16 and tf32 let cuDNN use tensor cores.
  const bool tensor_cores = c.precision_ != Precision::kFp32;
  for (cudnnConvolutionDescriptor_t* d : {&p->conv, &p->conv_data, &p->conv_filter}) {
    DPT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(d));
    DPT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(*d, pad_h, pad_w, int(g.sh), int(g.sw), 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DPT_CUDNN_CHECK(
        cudnnSetConvolutionMathType(*d, tensor_cores ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  choose_algorithms(*p, tensor_cores, c.label());
  const int64_t wsize = g.kh * g.kw * cin * c.filters_;
  p->w_krsc = Tensor({wsize}, Device::kCuda);
  p->dw_krsc = Tensor({wsize}, Device::kCuda);
  if (c.applied_activation() != Act::kLinear) p->dy_pre = Tensor(y, Device::kCuda);
  if (p->explicit_pad) {
    p->x_pad = Tensor({n, p->ph, p->pw, cin}, Device::kCuda);
    p->dx_pad = Tensor({n, p->ph, p->pw, cin}, Device::kCuda);
  }
  if (p->bf16) {
    const int64_t xs = n * p->ph * p->pw * cin, ys = num_elements(y);
    for (auto [buf, size] : {std::pair{&p->x16, xs},
                             {&p->dx16, xs},
                             {&p->w16, wsize},
                             {&p->dw16, wsize},
                             {&p->y16, ys},
                             {&p->dy16, ys}})
      buf->reserve(size);
  }
  return p;
}

void Conv2D::forward_cuda(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cuda_) cuda_.reset(new CudaState(applied_activation()));
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), cin = x.dim(3);
  auto it = cuda_->plans.find(n);
  if (it == cuda_->plans.end())
    it = cuda_->plans.emplace(n, cuda_->make_plan(*this, x.shape(), y.shape())).first;
  auto& p = *it->second;
  const Window2D g = geometry({h, w, cin});
  const float* src = x.data();
  if (p.explicit_pad) {
    pad_nhwc(x.data(), p.x_pad.data(), n, h, w, cin, g.h.pad_lo, g.h.pad_hi, g.w.pad_lo, g.w.pad_hi,
             0.0f);
    src = p.x_pad.data();
  }
  // HWIO (rows: kh*kw*cin, cols: filters) -> KRSC (filters x kh*kw*cin).
  transpose(kernel_p_->value, p.w_krsc.data(), g.kh * g.kw * cin, filters_);
  const float one = 1.0f, zero = 0.0f;
  const int64_t xs = n * p.ph * p.pw * cin;
  const void* xin = p.bf16 ? p.x16.from(src, xs) : static_cast<const void*>(src);
  const void* win = p.bf16 ? p.w16.from(p.w_krsc.data(), p.w_krsc.size())
                           : static_cast<const void*>(p.w_krsc.data());
  void* yout = p.bf16 ? p.y16.data() : static_cast<void*>(y.data());
  DPT_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, p.x, xin, p.w, win, p.conv, p.fwd_algo,
                                          p.workspace.data(), size_t(p.workspace.size()) * 4, &zero,
                                          p.y, yout));
  if (p.bf16) p.y16.to(y.data(), y.size());
  if (use_bias_)
    DPT_CUDNN_CHECK(cudnnAddTensor(cudnn(), &one, p.bias, bias_p_->value, &one, p.y32, y.data()));
  cuda_->act.forward(y.data(), y.data(), y.size() / filters_, filters_);
}

void Conv2D::backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  auto& p = *cuda_->plans.at(x.dim(0));
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), cin = x.dim(3);
  const Window2D g = geometry({h, w, cin});
  const float* grad = dy.data();
  if (applied_activation() != Act::kLinear) {
    trace::Span span("primitive", name(), ": activation");  // the CPU's parts, on CUDA events
    cuda_->act.backward(y.data(), dy.data(), p.dy_pre.data(), y.size() / filters_, filters_);
    grad = p.dy_pre.data();
  }
  const float one = 1.0f, zero = 0.0f;
  const int64_t xs = n * p.ph * p.pw * cin;
  const float* src = p.explicit_pad ? p.x_pad.data() : x.data();
  // bf16: x16 and w16 still hold this step's forward inputs.
  const void* xin = p.bf16 ? p.x16.data() : static_cast<const void*>(src);
  const void* gin = p.bf16 ? p.dy16.from(grad, y.size()) : static_cast<const void*>(grad);
  if (trainable_) {  // a frozen kernel (trainable: false) has no gradient to compute
    trace::Span span("primitive", name(), use_bias_ ? ": weights and bias" : ": weights");
    if (use_bias_)
      DPT_CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), &one, p.y32, grad, &zero, p.bias,
                                                   bias_p_->grad));
    void* dwout = p.bf16 ? p.dw16.data() : static_cast<void*>(p.dw_krsc.data());
    DPT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        cudnn(), &one, p.x, xin, p.y, gin, p.conv_filter, p.bwd_filter_algo, p.workspace.data(),
        size_t(p.workspace.size()) * 4, &zero, p.w, dwout));
    if (p.bf16) p.dw16.to(p.dw_krsc.data(), p.dw_krsc.size());
    transpose(p.dw_krsc.data(), kernel_p_->grad, filters_, g.kh * g.kw * cin);
  }
  if (!dx) return;
  trace::Span span("primitive", name(), ": data");
  float* dst = p.explicit_pad ? p.dx_pad.data() : dx->data();
  const void* win = p.bf16 ? p.w16.data() : static_cast<const void*>(p.w_krsc.data());
  void* dxout = p.bf16 ? p.dx16.data() : static_cast<void*>(dst);
  DPT_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, p.w, win, p.y, gin, p.conv_data,
                                               p.bwd_data_algo, p.workspace.data(),
                                               size_t(p.workspace.size()) * 4, &zero, p.x, dxout));
  if (p.bf16) p.dx16.to(dst, xs);
  if (p.explicit_pad)
    crop_nhwc(p.dx_pad.data(), dx->data(), n, h, w, cin, g.h.pad_lo, g.h.pad_hi, g.w.pad_lo,
              g.w.pad_hi);
}

}  // namespace dpt
