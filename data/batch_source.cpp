// BatchSource: a Prefetcher, plus a DeviceBatch when the model lives on a GPU.
#include "data/batch_source.h"

namespace dpt {

BatchSource::BatchSource(const ShardData& data, int64_t batch_capacity, int depth, Device device)
    : prefetch_(data, batch_capacity, depth) {
  if (device == Device::kCuda)
    device_ = std::make_unique<DeviceBatch>(batch_capacity,
                                            Shape{data.height, data.width, data.channels});
}

void BatchSource::start(std::vector<int64_t> order, int64_t batch, int64_t first_step,
                        int64_t last_step, AugmentSpec aug, uint64_t seed, uint32_t rank,
                        uint64_t epoch) {
  if (device_) device_->wait_for_copies();  // the prefetcher is about to refill its slots
  prefetch_.start(std::move(order), batch, first_step, last_step, aug, seed, rank, epoch);
}

const Batch& BatchSource::next() {
  if (!device_) return prefetch_.next();
  // Prefetcher::next() hands the previous host slot back to the producer: its copy must be done.
  device_->wait_for_copies();
  return device_->upload(prefetch_.next());
}

}  // namespace dpt
