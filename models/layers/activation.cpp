// Activation layer: dispatch to the oneDNN or the cuDNN implementation by the tensor's device.
#include "models/layers/activation.h"

#ifdef DPT_WITH_CUDA
#include "models/kernels/cuda/cudnn_util.cuh"
#endif

namespace dpt {

#ifdef DPT_WITH_CUDA
struct Activation::CudaState {
  explicit CudaState(Act a) : op(a) {}
  cuda::ActivationCuda op;
};
template <>
void BackendDeleter<Activation::CudaState>::operator()(Activation::CudaState* p) const {
  delete p;
}
#endif

void Activation::forward(const Tensor& x, Tensor& y, const StepContext&) {
  const int64_t cols = x.shape().back(), rows = x.size() / cols;
#ifdef DPT_WITH_CUDA
  if (x.on_device()) {
    if (!cuda_) cuda_.reset(new CudaState(op_.act()));
    return cuda_->op.forward(x.data(), y.data(), rows, cols);
  }
#endif
  op_.forward(x.data(), y.data(), rows, cols, label() + " forward");
}

void Activation::backward(const Tensor&, const Tensor& y, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  const int64_t cols = y.shape().back(), rows = y.size() / cols;
#ifdef DPT_WITH_CUDA
  if (y.on_device()) return cuda_->op.backward(y.data(), dy.data(), dx->data(), rows, cols);
#endif
  op_.backward(y.data(), dy.data(), dx->data(), rows, cols, label() + " backward");
}

}  // namespace dpt
