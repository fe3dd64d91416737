// Softmax cross-entropy: the confusion matrix; the loss kernels live in kernels/{cpu,cuda}.
#include "models/layers/softmax_cross_entropy.h"

namespace dpt {

void SoftmaxCrossEntropy::confusion(const Tensor& logits, const int32_t* labels, int64_t* matrix) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  for (int64_t i = 0; i < n; ++i) matrix[labels[i] * c + argmax(logits.data() + i * c, c)]++;
}

}  // namespace dpt
