// Exact evaluation: every sample of a split counted once across ranks, loss/accuracy/confusion.
#pragma once
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "data/batches.h"
#include "data/shards.h"
#include "models/model.h"
#include "trainer/config.h"

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
// own device buffers and page-locked host memory): one per view of eval.tta (the plain
// images; their mirrors; the shifted pairs), each with its augmentation and weight.
class EvalBatches {
 public:
  EvalBatches(const ShardData& data, int64_t batch, Device device, Tta tta);
  ~EvalBatches();
  struct View {
    std::unique_ptr<BatchSource> source;
    AugmentSpec aug;
    double weight = 1;
  };
  std::vector<View>& views() { return views_; }
  Tta tta() const { return tta_; }

 private:
  Tta tta_;
  std::vector<View> views_;
};

// Each rank evaluates its own indices; sums are all-reduced once at the end (one collective,
// reached by every rank however many batches it had).
// predictions, if given, receives this rank's predicted class per index; probabilities, if
// given, the softmax of the logits (classes values per index, in index order).
EvalResult evaluate(Model& model, const ShardData& data, const std::vector<int64_t>& indices,
                    int64_t batch, Communicator& comm, std::vector<int32_t>* predictions = nullptr,
                    std::vector<float>* probabilities = nullptr, Tta tta = Tta::kNone,
                    EvalBatches* batches = nullptr);
// With test-time augmentation (eval.tta) each image's softmax is the weighted average over its
// views (trainer/config.h), and the loss, accuracy and predictions come from the average.

}  // namespace dpt
