// Activations on cuDNN: the GPU twin of models/kernels/cpu/activation_cpu.cpp.
#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/layers/activation.h"

namespace dpt::cuda {

namespace {
// GELU with erf, the formula of oneDNN's eltwise_gelu_erf: y = x Phi(x);
// dy/dx = Phi(x) + x phi(x), Phi the normal CDF and phi its density.
__global__ void gelu_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
__global__ void gelu_backward_kernel(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}
}  // namespace

ActivationCuda::ActivationCuda(Act act) : act_(act) {
  if (act_ == Act::kLinear || act_ == Act::kSoftmax || act_ == Act::kGelu) return;
  DPT_CUDNN_CHECK(cudnnCreateActivationDescriptor(&desc_));
  const cudnnActivationMode_t mode = act_ == Act::kRelu      ? CUDNN_ACTIVATION_RELU
                                     : act_ == Act::kSigmoid ? CUDNN_ACTIVATION_SIGMOID
                                                             : CUDNN_ACTIVATION_TANH;
  DPT_CUDNN_CHECK(cudnnSetActivationDescriptor(desc_, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0));
}

ActivationCuda::~ActivationCuda() {
  if (desc_) cudnnDestroyActivationDescriptor(desc_);
}

const float* ActivationCuda::unaliased(const float* in, const float* out, int64_t n) {
  if (in != out) return in;
  if (copy_.size() < n) copy_ = Tensor({n}, Device::kCuda);
  DPT_CUDA_CHECK(
      cudaMemcpyAsync(copy_.data(), in, size_t(n) * 4, cudaMemcpyDeviceToDevice, stream()));
  return copy_.data();
}

void ActivationCuda::forward(const float* x, float* y, int64_t rows, int64_t cols) {
  const float one = 1.0f, zero = 0.0f;
  if (act_ == Act::kLinear) {
    if (x != y)
      DPT_CUDA_CHECK(
          cudaMemcpyAsync(y, x, size_t(rows * cols) * 4, cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  if (act_ == Act::kGelu) {
    gelu_forward_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(x, y, rows * cols);
    DPT_CUDA_LAUNCH_CHECK();
    return;
  }
  t_.nhwc(rows, 1, 1, cols);
  if (act_ == Act::kSoftmax) {
    DPT_CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_ACCURATE,
                                        CUDNN_SOFTMAX_MODE_INSTANCE, &one, t_,
                                        unaliased(x, y, rows * cols), &zero, t_, y));
    return;
  }
  DPT_CUDNN_CHECK(cudnnActivationForward(cudnn(), desc_, &one, t_, x, &zero, t_, y));
}

void ActivationCuda::backward(const float* y, const float* dy, float* dx, int64_t rows,
                              int64_t cols, const float* x) {
  const float one = 1.0f, zero = 0.0f;
  if (act_ == Act::kLinear) {
    if (dy != dx)
      DPT_CUDA_CHECK(
          cudaMemcpyAsync(dx, dy, size_t(rows * cols) * 4, cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  if (act_ == Act::kGelu) {
    gelu_backward_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(x, dy, dx, rows * cols);
    DPT_CUDA_LAUNCH_CHECK();
    return;
  }
  t_.nhwc(rows, 1, 1, cols);
  if (act_ == Act::kSoftmax) {
    DPT_CUDNN_CHECK(cudnnSoftmaxBackward(cudnn(), CUDNN_SOFTMAX_ACCURATE,
                                         CUDNN_SOFTMAX_MODE_INSTANCE, &one, t_, y, t_,
                                         unaliased(dy, dx, rows * cols), &zero, t_, dx));
    return;
  }
  // relu, sigmoid and tanh derivatives are functions of y; y stands in for x as in Caffe.
  DPT_CUDNN_CHECK(
      cudnnActivationBackward(cudnn(), desc_, &one, t_, y, t_, dy, t_, y, &zero, t_, dx));
}

}  // namespace dpt::cuda

// The Activation layer's kernels: the GPU twins of Activation::forward_cpu / backward_cpu.
namespace dpt {

struct Activation::CudaState {
  explicit CudaState(Act a) : op(a) {}
  cuda::ActivationCuda op;
};

template <>
void BackendDeleter<Activation::CudaState>::operator()(Activation::CudaState* p) const {
  delete p;
}

void Activation::forward_cuda(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cuda_) cuda_.reset(new CudaState(act_));
  const int64_t cols = x.shape().back(), rows = x.size() / cols;
  cuda_->op.forward(x.data(), y.data(), rows, cols);
}

void Activation::backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  const int64_t cols = y.shape().back(), rows = y.size() / cols;
  cuda_->op.backward(y.data(), dy.data(), dx->data(), rows, cols, x.data());
}

}  // namespace dpt
