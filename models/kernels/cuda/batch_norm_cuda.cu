// BatchNormalization on cuDNN: the GPU twin of models/kernels/cpu/batch_norm_cpu.cpp.
#include <map>

#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/layers/batch_norm.h"

namespace dpt {

using namespace cuda;

namespace {
// Keras' update with the biased batch variance. cuDNN's own running average would use the
// unbiased one, so cuDNN is asked for no averaging (factor 0) and this kernel does it from the
// saved mean and inverse standard deviation: var = 1 / inv_std^2 - epsilon.
__global__ void moving_average_kernel(float* mean, float* var, const float* batch_mean,
                                      const float* inv_std, int c, float momentum, float eps) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= c) return;
  const float v = 1.0f / (inv_std[i] * inv_std[i]) - eps;
  mean[i] = mean[i] * momentum + batch_mean[i] * (1 - momentum);
  var[i] = var[i] * momentum + v * (1 - momentum);
}
}  // namespace

struct BatchNorm::CudaState {
  struct Plan {
    TensorDesc data, param;
    Tensor save_mean, save_inv_std, unused_dx;
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
    if (x.shape().size() == 4) p->data.nhwc(n, x.dim(1), x.dim(2), c);
    else p->data.nhwc(n, 1, 1, c);
    p->param.nhwc(1, 1, 1, c);
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
      gamma_->value, beta_->value, 0.0, moving_mean_->value, moving_var_->value, double(epsilon_),
      p.save_mean.data(), p.save_inv_std.data()));
  moving_average_kernel<<<int((c + 127) / 128), 128, 0, stream()>>>(
      moving_mean_->value, moving_var_->value, p.save_mean.data(), p.save_inv_std.data(), int(c),
      momentum_, epsilon_);
  DPT_CUDA_LAUNCH_CHECK();
}

void BatchNorm::backward_cuda(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  auto& p = *cuda_->plans.at(x.dim(0));
  if (!dx && p.unused_dx.empty()) p.unused_dx = Tensor(x.shape(), Device::kCuda);
  if (!dx) dx = &p.unused_dx;
  const float one = 1.0f, zero = 0.0f;
  DPT_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, p.data, x.data(), p.data, dy.data(),
      p.data, dx->data(), p.param, gamma_->value, gamma_->grad, beta_->grad, double(epsilon_),
      p.save_mean.data(), p.save_inv_std.data()));
}

}  // namespace dpt
