// GradientReducer: averages gradients across ranks in buckets that start while backward still runs.
#pragma once
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "models/model.h"

namespace dpt {

// Note [bucket order]: buckets cover the flat gradient buffer in reverse parameter order (the
// order backward produces them), the first one small so communication starts early, as in
// PyTorch DDP. Bucket boundaries depend only on the model and the sizes, so every rank forms
// the same buckets and launches them in the same order: collectives always match.
class GradientReducer {
 public:
  struct Bucket {
    int64_t offset = 0, size = 0;  // range in the flat gradient buffer
    int ready_layer = 0;           // launch once backward has finished this layer
  };

  GradientReducer(Communicator& comm, Model& model, int64_t bucket_bytes,
                  int64_t first_bucket_bytes, bool overlap);

  void begin_step();
  void on_layer_done(int layer);  // the Model's backward hook
  // Launches what is left, waits for all; returns the seconds spent waiting: on the host
  // (MPI), or, for device collectives (NCCL), the GPU's measured stall of the previous step
  // (its events are complete by then without an extra synchronisation).
  double finish_step();
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  void launch(size_t b);
  // Note [trace]: a bucket's span runs from its launch to the first poll that finds it done.
  void trace_if_done(size_t i, bool done);
  Communicator& comm_;
  Model& model_;
  float* grads_ = nullptr;  // read at begin_step: the model may have moved to a GPU since
  bool overlap_;
  std::vector<Bucket> buckets_;
  std::vector<std::unique_ptr<Work>> pending_, previous_;
  size_t next_ = 0;  // next bucket to launch (strictly in order)
  std::vector<int64_t> launched_us_;  // per pending_ entry, while tracing; -1 once recorded
};

}  // namespace dpt
