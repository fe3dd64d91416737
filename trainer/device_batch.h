// DeviceBatch: a GPU copy of a host batch, made from pinned memory on its own copy stream.
#pragma once
#ifdef DPT_WITH_CUDA
#include <cuda_runtime.h>

#include <set>

#include "data/batches.h"

namespace dpt {

class DeviceBatch {
 public:
  DeviceBatch(int64_t capacity, const Shape& sample);
  ~DeviceBatch();
  DeviceBatch(const DeviceBatch&) = delete;
  // Starts the copy of `host` on the copy stream and makes the compute stream wait for it; the
  // host batch must stay untouched until the compute stream has passed that point (the step's
  // loss read-back synchronises it, before the prefetcher may reuse the slot).
  const Batch& upload(const Batch& host);

 private:
  Tensor x_;
  int32_t* y_ = nullptr;
  Batch batch_;
  cudaStream_t copy_ = nullptr;
  cudaEvent_t done_ = nullptr;
  std::set<const void*> pinned_;  // prefetch slots registered as page-locked memory
};

}  // namespace dpt
#endif
