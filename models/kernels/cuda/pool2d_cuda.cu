// Pool2D on cuDNN: the GPU twin of models/kernels/cpu/pool2d_cpu.cpp.
#include <cfloat>
#include <map>

#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/kernels/cuda/elementwise.cuh"
#include "models/layers/pool2d.h"

namespace dpt {

using namespace cuda;

// cuDNN pools with symmetric padding; an asymmetric 'same' max pool pads the input explicitly
// with -FLT_MAX (never the maximum of a window that touches real data). cuDNN's pooling
// backward needs the pooled output, so with a post-activation the pooled values are kept apart.
struct Pool2D::CudaState {
  struct Plan {
    TensorDesc x, y;
    cudnnPoolingDescriptor_t pool = nullptr;
    bool explicit_pad = false;
    Tensor x_pad, dx_pad, pooled, dy_pre;
    ~Plan() {
      if (pool) cudnnDestroyPoolingDescriptor(pool);
    }
  };
  explicit CudaState(Act a) : act(a) {}
  ActivationCuda act;
  std::map<int64_t, std::unique_ptr<Plan>> plans;
};

template <>
void BackendDeleter<Pool2D::CudaState>::operator()(Pool2D::CudaState* p) const {
  delete p;
}

void Pool2D::forward_cuda(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cuda_) cuda_.reset(new CudaState(post_act_));
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const Window2D g = geometry({h, w, c});
  auto it = cuda_->plans.find(n);
  if (it == cuda_->plans.end()) {
    auto p = std::make_unique<CudaState::Plan>();
    p->explicit_pad = g.h.pad_lo != g.h.pad_hi || g.w.pad_lo != g.w.pad_hi;
    DPT_CHECK(!(p->explicit_pad && kind_ == PoolKind::kAverage),
              label() << ": average pooling with asymmetric 'same' padding (even window on this "
                         "input size) is not supported on the cuda backend; use an odd pool size "
                         "or backend: cpu");
    const int64_t ph = p->explicit_pad ? h + g.h.pad_lo + g.h.pad_hi : h;
    const int64_t pw = p->explicit_pad ? w + g.w.pad_lo + g.w.pad_hi : w;
    p->x.nhwc(n, ph, pw, c);
    p->y.nhwc(n, g.h.out, g.w.out, c);
    DPT_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&p->pool));
    const cudnnPoolingMode_t mode = kind_ == PoolKind::kMax
                                        ? CUDNN_POOLING_MAX_DETERMINISTIC
                                        : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    DPT_CUDNN_CHECK(cudnnSetPooling2dDescriptor(p->pool, mode, CUDNN_NOT_PROPAGATE_NAN, int(g.kh),
                                                int(g.kw), p->explicit_pad ? 0 : int(g.h.pad_lo),
                                                p->explicit_pad ? 0 : int(g.w.pad_lo), int(g.sh),
                                                int(g.sw)));
    if (p->explicit_pad) {
      p->x_pad = Tensor({n, ph, pw, c}, Device::kCuda);
      p->dx_pad = Tensor({n, ph, pw, c}, Device::kCuda);
    }
    if (post_act_ != Act::kLinear) {
      p->pooled = Tensor(y.shape(), Device::kCuda);
      p->dy_pre = Tensor(y.shape(), Device::kCuda);
    }
    it = cuda_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = *it->second;
  const float* src = x.data();
  if (p.explicit_pad) {
    pad_nhwc(x.data(), p.x_pad.data(), n, h, w, c, g.h.pad_lo, g.h.pad_hi, g.w.pad_lo, g.w.pad_hi,
             -FLT_MAX);
    src = p.x_pad.data();
  }
  float* out = post_act_ != Act::kLinear ? p.pooled.data() : y.data();
  const float one = 1.0f, zero = 0.0f;
  DPT_CUDNN_CHECK(cudnnPoolingForward(cudnn(), p.pool, &one, p.x, src, &zero, p.y, out));
  if (post_act_ != Act::kLinear) cuda_->act.forward(out, y.data(), y.size() / c, c);
}

void Pool2D::backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  auto& p = *cuda_->plans.at(x.dim(0));
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const Window2D g = geometry({h, w, c});
  const float* grad = dy.data();
  const float* pooled = y.data();
  if (post_act_ != Act::kLinear) {
    cuda_->act.backward(y.data(), dy.data(), p.dy_pre.data(), y.size() / c, c);
    grad = p.dy_pre.data();
    pooled = p.pooled.data();
  }
  const float one = 1.0f, zero = 0.0f;
  const float* src = p.explicit_pad ? p.x_pad.data() : x.data();
  float* dst = p.explicit_pad ? p.dx_pad.data() : dx->data();
  DPT_CUDNN_CHECK(cudnnPoolingBackward(cudnn(), p.pool, &one, p.y, pooled, p.y, grad, p.x, src,
                                       &zero, p.x, dst));
  if (p.explicit_pad)
    crop_nhwc(p.dx_pad.data(), dx->data(), n, h, w, c, g.h.pad_lo, g.h.pad_hi, g.w.pad_lo,
              g.w.pad_hi);
}

}  // namespace dpt
