// Softmax cross-entropy on logits with integer labels (Keras' sparse categorical CE, from_logits).
#pragma once
#include <cstdint>

#include "models/tensor/tensor.h"

namespace dpt {

struct LossStats {
  double loss_sum = 0;  // sum over samples, so ranks and batches add up exactly
  int64_t correct = 0;  // argmax(logits) == label
  int64_t count = 0;
  void add(const LossStats& o) {
    loss_sum += o.loss_sum;
    correct += o.correct;
    count += o.count;
  }
};

// Fused for numerical stability: log-softmax via log-sum-exp, gradient (softmax - onehot).
class SoftmaxCrossEntropy {
 public:
  // labels live where logits live (host or device).
  // dlogits (may be null for evaluation) receives (softmax - onehot) * grad_scale; the trainer
  // passes 1 / global_batch so that gradients summed over ranks are the batch mean.
  static LossStats compute(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                           float grad_scale);
#ifdef DPT_WITH_CUDA
  // Device logits and device labels: the GPU twin (models/kernels/cuda/loss_cuda.cu).
  static LossStats compute_cuda(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                                float grad_scale);
#endif
  // Accumulates a confusion matrix (rows: true class, columns: predicted).
  static void confusion(const Tensor& logits, const int32_t* labels, int64_t* matrix);
};

}  // namespace dpt
