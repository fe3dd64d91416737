// BatchSource: the batches of an epoch, prefetched on the host and handed over on the model's
// device (the trainer and the evaluator never see where a batch lives).
#pragma once
#include <memory>

#include "data/batches.h"
#include "data/device_batch.h"

namespace dpt {

class BatchSource {
 public:
  BatchSource(const ShardData& data, int64_t batch_capacity, int depth, Device device);
  // As Prefetcher::start.
  void start(std::vector<int64_t> order, int64_t batch, int64_t first_step, int64_t last_step,
             AugmentSpec aug, uint64_t seed, uint32_t rank, uint64_t epoch);
  // The next batch, on the device; valid until the following call.
  const Batch& next();
  void stop() { prefetch_.stop(); }

 private:
  Prefetcher prefetch_;
  std::unique_ptr<DeviceBatch> device_;  // null on the CPU
};

}  // namespace dpt
