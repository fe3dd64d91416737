// BatchNormalization on cuDNN: the GPU twin of models/kernels/cpu/batch_norm_cpu.cpp.
#include <algorithm>
#include <map>

#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/layers/batch_norm.h"

namespace dpt {

using namespace cuda;

namespace {
// Keras' moving averages use the biased batch variance, and cuDNN's own running average the
// unbiased one; cuDNN's saved mean and inverse standard deviation are an opaque cache for its
// backward (and 1 / inv_std^2 - eps cancels badly for variances far below eps). So cuDNN gets
// no running buffers (nullptr, which it documents as "no running averages"; passing them with
// factor 0 still makes it compute the unbiased variance, 0/0 when N*H*W is 1), and this kernel
// measures the batch itself: one block per channel, two passes (mean, then squared
// deviations) in double, a fixed reduction order.
constexpr int kThreads = 256;
__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

__global__ void moving_average_kernel(const float* x, int64_t rows, int64_t c, float* mean,
                                      float* var, float momentum) {
  __shared__ double shared[kThreads];
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) s += x[i * c + ch];
    const double m = block_sum(s, shared) / double(rows);
    double d = 0;
    for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) {
      const double e = x[i * c + ch] - m;
      d += e * e;
    }
    const double v = block_sum(d, shared) / double(rows);
    if (threadIdx.x == 0) {
      mean[ch] = mean[ch] * momentum + float(m) * (1 - momentum);
      var[ch] = var[ch] * momentum + float(v) * (1 - momentum);
    }
  }
}
}  // namespace

struct BatchNorm::CudaState {
  struct Plan {
    TensorDesc data, param;
    Tensor save_mean, save_inv_std, unused_dx, unused_dgamma;
  };
  std::map<int64_t, std::unique_ptr<Plan>> plans;
};

template <>
void BackendDeleter<BatchNorm::CudaState>::operator()(BatchNorm::CudaState* p) const {
  delete p;
}

void BatchNorm::forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx) {
  if (!cuda_) cuda_.reset(new CudaState());
  const int64_t n = x.dim(0), c = x.shape().back();
  auto it = cuda_->plans.find(n);
  if (it == cuda_->plans.end()) {
    auto p = std::make_unique<CudaState::Plan>();
    if (x.shape().size() == 4)
      p->data.nhwc(n, x.dim(1), x.dim(2), c);
    else
      p->data.nhwc(n, 1, 1, c);
    DPT_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(p->param, p->data, CUDNN_BATCHNORM_SPATIAL));
    p->save_mean = Tensor({c}, Device::kCuda);
    p->save_inv_std = Tensor({c}, Device::kCuda);
    it = cuda_->plans.emplace(n, std::move(p)).first;
  }
  auto& p = *it->second;
  const float one = 1.0f, zero = 0.0f;
  if (ctx.mode == Mode::kInfer) {
    DPT_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, p.data, x.data(), p.data, y.data(), p.param,
        gamma_->value, beta_->value, moving_mean_->value, moving_var_->value, double(epsilon_)));
    return;
  }
  DPT_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, p.data, x.data(), p.data, y.data(), p.param,
      gamma_->value, beta_->value, 0.0, nullptr, nullptr, double(epsilon_), p.save_mean.data(),
      p.save_inv_std.data()));
  moving_average_kernel<<<int(std::min<int64_t>(c, 65535)), kThreads, 0, stream()>>>(
      x.data(), x.size() / c, c, moving_mean_->value, moving_var_->value, momentum_);
  DPT_CUDA_LAUNCH_CHECK();
}

void BatchNorm::backward_cuda(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  auto& p = *cuda_->plans.at(x.dim(0));
  if (!dx && p.unused_dx.empty()) p.unused_dx = Tensor(x.shape(), Device::kCuda);
  if (!dx) dx = &p.unused_dx;
  // scale: false: gamma is frozen at 1 and its gradient goes to scratch.
  if (!gamma_->grad && p.unused_dgamma.empty())
    p.unused_dgamma = Tensor({gamma_->size()}, Device::kCuda);
  float* dgamma = gamma_->grad ? gamma_->grad : p.unused_dgamma.data();
  const float one = 1.0f, zero = 0.0f;
  DPT_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, p.data, x.data(), p.data,
      dy.data(), p.data, dx->data(), p.param, gamma_->value, dgamma, beta_->grad, double(epsilon_),
      p.save_mean.data(), p.save_inv_std.data()));
}

}  // namespace dpt
