// SGD and Adam updates on the CPU: vectorised loops over the flat buffers, OpenMP across cores.
// Why these loops vectorise (GCC's -fopt-info-vec says so): no branch inside a loop, and this
// file is compiled with -fno-math-errno (CMakeLists.txt), without which std::sqrt keeps an errno
// branch and Adam's loop ran scalar. Both change no bits: sqrt and division are IEEE-exact in
// either form, and the contractions into FMA are the same.
#include <cmath>

#include "models/kernels/no_cuda.h"
#include "models/kernels/update_rules.h"

namespace dpt {

void sgd_update_cpu(float* w, const float* g, float* v, int64_t n, const SgdRule& r, float lr) {
  const float mu = r.momentum, wd = r.weight_decay;
  const bool nesterov = r.nesterov;
  if (mu == 0) {  // no velocity buffer (v is null): the branch stays outside the vector loop
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i]);
    return;
  }
  if (nesterov) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] + wd * w[i];
      v[i] = mu * v[i] - lr * gi;
      w[i] += mu * v[i] - lr * gi;
    }
    return;
  }
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + wd * w[i];
    v[i] = mu * v[i] - lr * gi;
    w[i] += v[i];
  }
}

void lookahead_sync_cpu(float* w, float* slow, int64_t n, float rho) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) w[i] = slow[i] = rho * slow[i] + (1 - rho) * w[i];
}

void adam_update_cpu(float* w, const float* g, float* m, float* v, int64_t n, const AdamRule& r) {
  const float b1 = r.beta1, b2 = r.beta2, eps = r.epsilon, alpha = r.alpha, decay = r.decay,
              l2 = r.l2;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + l2 * w[i];
    m[i] += (gi - m[i]) * (1 - b1);
    v[i] += (gi * gi - v[i]) * (1 - b2);
    w[i] -= decay * w[i] + alpha * m[i] / (std::sqrt(v[i]) + eps);
  }
}

#ifndef DPT_WITH_CUDA
// The GPU side of a CPU-only build (kernels/cuda/update_rules_cuda.cu otherwise).
void sgd_update_cuda(float*, const float*, float*, int64_t, const SgdRule&, float) {
  fail_no_cuda();
}
void lookahead_sync_cuda(float*, float*, int64_t, float) { fail_no_cuda(); }
void adam_update_cuda(float*, const float*, float*, float*, int64_t, const AdamRule&) {
  fail_no_cuda();
}
#endif

}  // namespace dpt
