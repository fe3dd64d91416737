// Softmax cross-entropy on the CPU: per-sample log-sum-exp loss, accuracy and gradient in one pass.
#include <cmath>

#include "models/kernels/no_cuda.h"
#include "models/layers/softmax_cross_entropy.h"

namespace dpt {

LossStats SoftmaxCrossEntropy::compute_cpu(const Tensor& logits, const int32_t* labels,
                                           Tensor* dlogits, float grad_scale, float smoothing) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  LossStats stats;
  stats.count = n;
  double loss_sum = 0;
  int64_t correct = 0;
#pragma omp parallel for reduction(+ : loss_sum, correct) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * c;
    const int32_t y = labels[i];
    const float mx = row[argmax(row, c)];
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(double(row[j] - mx));
    correct += argmax(row, c) == y;
    if (smoothing == 0) {
      loss_sum += std::log(sum) - double(row[y] - mx);
      if (dlogits) {
        float* d = dlogits->data() + i * c;
        for (int64_t j = 0; j < c; ++j)
          d[j] = float(std::exp(double(row[j] - mx)) / sum - (j == y ? 1.0 : 0.0)) * grad_scale;
      }
      continue;
    }
    // Smoothed targets t = (1 - s) onehot(y) + s / c: loss = log-sum-exp - sum_j t_j z_j.
    const double s = smoothing, off = s / double(c), on = 1.0 - s + off;
    double target_dot = 0;
    for (int64_t j = 0; j < c; ++j) target_dot += (j == y ? on : off) * double(row[j] - mx);
    loss_sum += std::log(sum) - target_dot;
    if (dlogits) {
      float* d = dlogits->data() + i * c;
      for (int64_t j = 0; j < c; ++j)
        d[j] = float(std::exp(double(row[j] - mx)) / sum - (j == y ? on : off)) * grad_scale;
    }
  }
  stats.loss_sum = loss_sum;
  stats.correct = correct;
  return stats;
}

#ifndef DPT_WITH_CUDA
// The GPU side of a CPU-only build (kernels/cuda/softmax_cross_entropy_cuda.cu otherwise).
LossStats SoftmaxCrossEntropy::compute_cuda(const Tensor&, const int32_t*, Tensor*, float, float) {
  fail_no_cuda();
}
#endif

}  // namespace dpt
