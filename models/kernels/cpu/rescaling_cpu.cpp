// Rescaling on the CPU: one vectorised loop each way (y = s x + b; dx = s dy).
#include "models/kernels/no_cuda.h"
#include "models/layers/rescaling.h"

namespace dpt {

void Rescaling::forward_cpu(const Tensor& x, Tensor& y, const StepContext&) {
  const float s = scale_, b = offset_;
  const float* in = x.data();
  float* out = y.data();
  const int64_t n = x.size();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = s * in[i] + b;
}

void Rescaling::backward_cpu(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  const float s = scale_;
  const float* in = dy.data();
  float* out = dx->data();
  const int64_t n = dy.size();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = s * in[i];
}

// The GPU side of a CPU-only build (kernels/cuda/rescaling_cuda.cu otherwise).
DPT_NO_CUDA_KERNELS(Rescaling)

}  // namespace dpt
