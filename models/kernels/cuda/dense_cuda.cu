// Dense on cuBLAS: the GPU twin of models/kernels/cpu/dense_cpu.cpp.
#include <map>

#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/kernels/cuda/elementwise.cuh"
#include "models/layers/dense.h"

namespace dpt {

using namespace cuda;

// Note [cublas row-major]: dptrain's matrices are row-major: x (N, K), kernel W (K, U) as Keras
// stores it, y (N, U). cuBLAS is column-major, where these buffers read as x^T, W^T and y^T, so
// y^T = W^T x^T is one sgemm without copies, and likewise for both gradients.
struct Dense::CudaState {
  explicit CudaState(Act a) : act(a) {}
  ActivationCuda act;
  std::map<int64_t, Tensor> dy_pre;  // by batch size
};

template <>
void BackendDeleter<Dense::CudaState>::operator()(Dense::CudaState* p) const {
  delete p;
}

void Dense::forward_cuda(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cuda_) cuda_.reset(new CudaState(act_));
  const int n = int(x.dim(0)), k = int(x.dim(1)), u = int(units_);
  const float one = 1.0f, zero = 0.0f;
  DPT_CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, u, n, k, &one, kernel_p_->value,
                               u, x.data(), k, &zero, y.data(), u));
  if (use_bias_) add_bias(y.data(), bias_p_->value, n, u);
  cuda_->act.forward(y.data(), y.data(), n, u);
}

void Dense::backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  const int n = int(x.dim(0)), k = int(x.dim(1)), u = int(units_);
  const float* g = dy.data();
  if (act_ != Act::kLinear) {
    auto it = cuda_->dy_pre.find(n);
    if (it == cuda_->dy_pre.end()) it = cuda_->dy_pre.emplace(n, Tensor(y.shape(), Device::kCuda)).first;
    cuda_->act.backward(y.data(), dy.data(), it->second.data(), n, u);
    g = it->second.data();
  }
  const float one = 1.0f, zero = 0.0f;
  // dW (K, U) = x^T dy  ->  column-major dW^T (U, K) = dy^T (U, N) * x (N, K).
  DPT_CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_T, u, k, n, &one, g, u, x.data(), k,
                               &zero, kernel_p_->grad, u));
  if (use_bias_) bias_grad(g, bias_p_->grad, n, u);
  if (!dx) return;
  // dx (N, K) = dy W^T  ->  column-major dx^T (K, N) = W (K, U) * dy^T (U, N).
  DPT_CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, k, n, u, &one, kernel_p_->value, u,
                               g, u, &zero, dx->data(), k));
}

}  // namespace dpt
