// Softmax cross-entropy: per-sample log-sum-exp loss, accuracy count and gradient in one pass.
#include "models/layers/softmax_cross_entropy.h"

#include <cmath>

namespace dpt {

namespace {
int64_t argmax(const float* row, int64_t c) {
  int64_t best = 0;
  for (int64_t j = 1; j < c; ++j)
    if (row[j] > row[best]) best = j;
  return best;
}
}  // namespace

LossStats SoftmaxCrossEntropy::compute(const Tensor& logits, const int32_t* labels,
                                       Tensor* dlogits, float grad_scale) {
#ifdef DPT_WITH_CUDA
  if (logits.on_device()) return compute_cuda(logits, labels, dlogits, grad_scale);
#endif
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
    loss_sum += std::log(sum) - double(row[y] - mx);
    correct += argmax(row, c) == y;
    if (dlogits) {
      float* d = dlogits->data() + i * c;
      for (int64_t j = 0; j < c; ++j)
        d[j] = float(std::exp(double(row[j] - mx)) / sum - (j == y ? 1.0 : 0.0)) * grad_scale;
    }
  }
  stats.loss_sum = loss_sum;
  stats.correct = correct;
  return stats;
}

void SoftmaxCrossEntropy::confusion(const Tensor& logits, const int32_t* labels,
                                    int64_t* matrix) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  for (int64_t i = 0; i < n; ++i) matrix[labels[i] * c + argmax(logits.data() + i * c, c)]++;
}

}  // namespace dpt
