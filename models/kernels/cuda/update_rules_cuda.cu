// SGD and Adam updates on the GPU: the formulas of update_rules_cpu.cpp, one thread per element.
#include "models/kernels/cuda/cuda_context.h"
#include "models/kernels/update_rules.h"

namespace dpt {

namespace {

__global__ void sgd_kernel(float* w, const float* g, float* v, int64_t n, SgdRule r, float lr) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float gi = g[i] + r.weight_decay * w[i];
    if (r.momentum > 0) {
      v[i] = r.momentum * v[i] - lr * gi;
      w[i] += r.nesterov ? r.momentum * v[i] - lr * gi : v[i];
    } else {
      w[i] -= lr * gi;
    }
  }
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, int64_t n, AdamRule r) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float gi = g[i] + r.l2 * w[i];
    m[i] += (gi - m[i]) * (1 - r.beta1);
    v[i] += (gi * gi - v[i]) * (1 - r.beta2);
    w[i] -= r.decay * w[i] + r.alpha * m[i] / (sqrtf(v[i]) + r.epsilon);
  }
}

__global__ void lookahead_kernel(float* w, float* slow, int64_t n, float rho) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    w[i] = slow[i] = rho * slow[i] + (1 - rho) * w[i];
}

}  // namespace

void lookahead_sync_cuda(float* w, float* slow, int64_t n, float rho) {
  lookahead_kernel<<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(w, slow, n, rho);
  DPT_CUDA_LAUNCH_CHECK();
}

void sgd_update_cuda(float* w, const float* g, float* v, int64_t n, const SgdRule& r, float lr) {
  sgd_kernel<<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(w, g, v, n, r, lr);
  DPT_CUDA_LAUNCH_CHECK();
}

void adam_update_cuda(float* w, const float* g, float* m, float* v, int64_t n, const AdamRule& r) {
  adam_kernel<<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(w, g, m, v, n, r);
  DPT_CUDA_LAUNCH_CHECK();
}

}  // namespace dpt
