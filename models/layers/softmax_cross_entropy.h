// Softmax cross-entropy on logits with integer labels (Keras' sparse categorical CE, from_logits).
#pragma once
#include <cstdint>

#include "core/tensor.h"

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
// Not a Layer (it ends the graph), but the same shape (Note [one shape] in layer.h): compute()
// chooses compute_cpu (kernels/cpu/softmax_cross_entropy_cpu.cpp) or compute_cuda
// (kernels/cuda/softmax_cross_entropy_cuda.cu) by the logits' device.
class SoftmaxCrossEntropy {
 public:
  // labels live where logits live (host or device).
  // dlogits (may be null for evaluation) receives (softmax - onehot) * grad_scale; the trainer
  // passes 1 / global_batch so that gradients summed over ranks are the batch mean.
  // smoothing s: the targets are (1 - s) one-hot + s / classes (Keras' label_smoothing).
  static LossStats compute(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                           float grad_scale, float smoothing = 0) {
    return logits.on_device() ? compute_cuda(logits, labels, dlogits, grad_scale, smoothing)
                              : compute_cpu(logits, labels, dlogits, grad_scale, smoothing);
  }
  // Accumulates a confusion matrix from host logits and labels (rows: true class, columns:
  // predicted).
  static void confusion(const Tensor& logits, const int32_t* labels, int64_t* matrix);
  // The predicted class of one row of logits: the first maximum, as Keras' argmax.
  static int64_t argmax(const float* row, int64_t c) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (row[j] > row[best]) best = j;
    return best;
  }

 private:
  static LossStats compute_cpu(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                               float grad_scale, float smoothing);
  static LossStats compute_cuda(const Tensor& logits, const int32_t* labels, Tensor* dlogits,
                                float grad_scale, float smoothing);
};

}  // namespace dpt
