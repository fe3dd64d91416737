// Softmax cross-entropy on the GPU: one thread per sample, the same log-sum-exp as the CPU kernel.
#include <vector>

#include "models/kernels/cuda/cuda_context.h"
#include "models/layers/softmax_cross_entropy.h"

namespace dpt {

namespace {
__global__ void xent_kernel(const float* logits, const int32_t* labels, float* dlogits,
                            double* loss, int32_t* correct, int64_t n, int64_t c, float scale,
                            float smoothing) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float* row = logits + i * c;
  int64_t best = 0;
  for (int64_t j = 1; j < c; ++j)
    if (row[j] > row[best]) best = j;
  const float mx = row[best];
  double sum = 0;
  for (int64_t j = 0; j < c; ++j) sum += exp(double(row[j] - mx));
  const int32_t y = labels[i];
  // Smoothed targets (1 - s) onehot + s / c, as on the CPU; s = 0 is the plain loss.
  const double off = double(smoothing) / double(c), on = 1.0 - double(smoothing) + off;
  double target_dot = 0;
  for (int64_t j = 0; j < c; ++j) target_dot += (j == y ? on : off) * double(row[j] - mx);
  loss[i] = log(sum) - target_dot;
  correct[i] = best == y;
  if (dlogits)
    for (int64_t j = 0; j < c; ++j)
      dlogits[i * c + j] = float(exp(double(row[j] - mx)) / sum - (j == y ? on : off)) * scale;
}

// Per-sample results, on the device and their page-locked host copies (Note [pinned staging]
// in cuda_context.cu), grown to the largest batch seen.
struct Scratch {
  double* loss = nullptr;
  int32_t* correct = nullptr;
  double* host_loss = nullptr;
  int32_t* host_correct = nullptr;
  int64_t capacity = 0;
  void reserve(int64_t n) {
    if (n <= capacity) return;
    cudaFree(loss);
    cudaFree(correct);
    cudaFreeHost(host_loss);
    cudaFreeHost(host_correct);
    DPT_CUDA_CHECK(cudaMalloc(&loss, size_t(n) * sizeof(double)));
    DPT_CUDA_CHECK(cudaMalloc(&correct, size_t(n) * sizeof(int32_t)));
    DPT_CUDA_CHECK(cudaMallocHost(&host_loss, size_t(n) * sizeof(double)));
    DPT_CUDA_CHECK(cudaMallocHost(&host_correct, size_t(n) * sizeof(int32_t)));
    capacity = n;
  }
};
}  // namespace

LossStats SoftmaxCrossEntropy::compute_cuda(const Tensor& logits, const int32_t* labels,
                                            Tensor* dlogits, float grad_scale, float smoothing) {
  static Scratch scratch;
  const int64_t n = logits.dim(0), c = logits.dim(1);
  scratch.reserve(n);
  xent_kernel<<<int((n + 127) / 128), 128, 0, cuda::stream()>>>(
      logits.data(), labels, dlogits ? dlogits->data() : nullptr, scratch.loss, scratch.correct, n,
      c, grad_scale, smoothing);
  DPT_CUDA_LAUNCH_CHECK();
  DPT_CUDA_CHECK(cudaMemcpyAsync(scratch.host_loss, scratch.loss, size_t(n) * sizeof(double),
                                 cudaMemcpyDeviceToHost, cuda::stream()));
  DPT_CUDA_CHECK(cudaMemcpyAsync(scratch.host_correct, scratch.correct, size_t(n) * sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
  LossStats s;
  s.count = n;
  for (int64_t i = 0; i < n; ++i) {
    s.loss_sum += scratch.host_loss[i];
    s.correct += scratch.host_correct[i];
  }
  return s;
}

}  // namespace dpt
