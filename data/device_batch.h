// DeviceBatch: host batches copied to the GPU on their own stream, double-buffered.
#pragma once
#include <memory>

#include "data/batches.h"

namespace dpt {

// Note [device batch order]: two device buffers take turns. A copy into a buffer waits (on the
// GPU) for an event the compute stream recorded after the last step that read it, and the
// compute stream waits for the copy before the step that reads it: the next batch's copy
// overlaps the current step and never overwrites images that backward still reads.
// Implemented in data/device_batch.cu; a CPU-only build's data/no_cuda.cpp refuses it.
class DeviceBatch {
 public:
  DeviceBatch(int64_t capacity, const Shape& sample);
  ~DeviceBatch();
  DeviceBatch(const DeviceBatch&) = delete;
  // Starts the copy of `host` and returns its device view; valid until the call after next.
  const Batch& upload(const Batch& host);
  // Waits until the last copy has read its host batch, so that its slot may be refilled.
  void wait_for_copies();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dpt
