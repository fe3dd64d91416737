// The CUDA side of data/ in a CPU-only build: a device batch is refused with a clear error.
#include "core/error.h"
#include "data/device_batch.h"

#ifndef DPT_WITH_CUDA
namespace dpt {

struct DeviceBatch::Impl {};

DeviceBatch::DeviceBatch(int64_t, const Shape&) {
  DPT_FAIL(
      "this dptrain was built without CUDA: batches cannot go to a GPU; use "
      "train.backend: cpu");
}
DeviceBatch::~DeviceBatch() = default;
const Batch& DeviceBatch::upload(const Batch& host) { return host; }
void DeviceBatch::wait_for_copies() {}

}  // namespace dpt
#endif
