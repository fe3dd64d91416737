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
  Bf16Buffer x16, w16, dy16;         // Note [precision]: bf16 operands, FP32 results
  int64_t x16_size = 0, dy16_size = 0;
  bool w16_ready = false;
};

template <>
void BackendDeleter<Dense::CudaState>::operator()(Dense::CudaState* p) const {
  delete p;
}

namespace {
// C (FP32) = op(A) op(B), column-major, in the layer's precision: FP32 (sgemm, no TF32), TF32
// tensor cores, or bfloat16 operands with FP32 accumulation.
void gemm(Precision prec, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          const void* a, int lda, const void* b, int ldb, float* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t t = prec == Precision::kBf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute =
      prec == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  DPT_CUBLAS_CHECK(cublasGemmEx(cublas(), ta, tb, m, n, k, &one, a, t, lda, b, t, ldb, &zero, c,
                                CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT));
}
}  // namespace

void Dense::forward_cuda(const Tensor& x, Tensor& y, const StepContext&) {
  if (!cuda_) cuda_.reset(new CudaState(act_));
  const int n = int(x.dim(0)), k = int(x.dim(1)), u = int(units_);
  const bool bf16 = precision_ == Precision::kBf16;
  const void* w = kernel_p_->value;
  const void* xin = x.data();
  if (bf16) {
    if (cuda_->x16_size < x.size()) cuda_->x16.reserve(cuda_->x16_size = x.size());
    if (!cuda_->w16_ready) cuda_->w16.reserve(int64_t(k) * u);
    cuda_->w16_ready = true;
    w = cuda_->w16.from(kernel_p_->value, int64_t(k) * u);
    xin = cuda_->x16.from(x.data(), x.size());
  }
  gemm(precision_, CUBLAS_OP_N, CUBLAS_OP_N, u, n, k, w, u, xin, k, y.data(), u);
  if (use_bias_) add_bias(y.data(), bias_p_->value, n, u);
  cuda_->act.forward(y.data(), y.data(), n, u);
}

void Dense::backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  const int n = int(x.dim(0)), k = int(x.dim(1)), u = int(units_);
  const float* g = dy.data();
  if (act_ != Act::kLinear) {
    auto it = cuda_->dy_pre.find(n);
    if (it == cuda_->dy_pre.end())
      it = cuda_->dy_pre.emplace(n, Tensor(y.shape(), Device::kCuda)).first;
    cuda_->act.backward(y.data(), dy.data(), it->second.data(), n, u);
    g = it->second.data();
  }
  const bool bf16 = precision_ == Precision::kBf16;
  const void* gin = g;
  const void* xin = x.data();
  const void* w = kernel_p_->value;
  if (bf16) {  // x16 and w16 still hold this step's forward operands
    if (cuda_->dy16_size < int64_t(n) * u) cuda_->dy16.reserve(cuda_->dy16_size = int64_t(n) * u);
    gin = cuda_->dy16.from(g, int64_t(n) * u);
    xin = cuda_->x16.data();
    w = cuda_->w16.data();
  }
  // dW (K, U) = x^T dy  ->  column-major dW^T (U, K) = dy^T (U, N) * x (N, K).
  gemm(precision_, CUBLAS_OP_N, CUBLAS_OP_T, u, k, n, gin, u, xin, k, kernel_p_->grad, u);
  if (use_bias_) bias_grad(g, bias_p_->grad, n, u);
  if (!dx) return;
  // dx (N, K) = dy W^T  ->  column-major dx^T (K, N) = W (K, U) * dy^T (U, N).
  gemm(precision_, CUBLAS_OP_T, CUBLAS_OP_N, k, n, u, w, u, gin, u, dx->data(), k);
}

}  // namespace dpt
