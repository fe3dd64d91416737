// Exact evaluation: every sample of a split counted once across ranks, loss/accuracy/confusion.
#pragma once
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "data/shards.h"
#include "models/model.h"

namespace dpt {

struct EvalResult {
  int64_t count = 0;
  double loss = 0, accuracy = 0;
  int64_t classes = 0;
  std::vector<int64_t> confusion;  // classes x classes, rows = true class
  std::vector<double> per_class_accuracy() const;
};

class BatchSource;

// The batch sources of one evaluated set, made once and reused every epoch (on a GPU they
// own device buffers and page-locked host memory): plain, and mirrored for eval.tta: flip.
class EvalBatches {
 public:
  EvalBatches(const ShardData& data, int64_t batch, Device device, bool tta_flip);
  ~EvalBatches();
  BatchSource& plain() { return *plain_; }
  BatchSource* mirrored() { return mirrored_.get(); }

 private:
  std::unique_ptr<BatchSource> plain_, mirrored_;
};

// Each rank evaluates its own indices; sums are all-reduced once at the end (one collective,
// reached by every rank however many batches it had).
// predictions, if given, receives this rank's predicted class per index; probabilities, if
// given, the softmax of the logits (classes values per index, in index order).
EvalResult evaluate(Model& model, const ShardData& data, const std::vector<int64_t>& indices,
                    int64_t batch, Communicator& comm, std::vector<int32_t>* predictions = nullptr,
                    std::vector<float>* probabilities = nullptr, bool tta_flip = false,
                    EvalBatches* batches = nullptr);
// tta_flip (eval.tta: flip): each image's softmax is averaged with its mirror image's, and
// the loss, accuracy and predictions come from the average.

}  // namespace dpt
