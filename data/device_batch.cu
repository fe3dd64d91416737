// DeviceBatch: pinned host slots, a copy stream and two device buffers ordered by events.
#include <set>

#include "data/device_batch.h"
#include "models/kernels/cuda/cuda_context.h"

namespace dpt {

struct DeviceBatch::Impl {
  struct Slot {
    Tensor x;
    int32_t* y = nullptr;
    cudaEvent_t copied = nullptr;    // on the copy stream: the batch is on the device
    cudaEvent_t released = nullptr;  // on the compute stream: the last step reading it is done
    bool used = false;
    Batch batch;
  };
  Slot slots[2];
  int next = 0;
  int last = -1;
  cudaStream_t copy = nullptr;
  std::set<const void*> pinned;  // prefetch slots registered as page-locked memory
};

DeviceBatch::DeviceBatch(int64_t capacity, const Shape& sample) : impl_(new Impl) {
  DPT_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->copy, cudaStreamNonBlocking));
  for (auto& s : impl_->slots) {
    s.x = Tensor(with_batch(capacity, sample), Device::kCuda);
    DPT_CUDA_CHECK(cudaMalloc(&s.y, size_t(capacity) * sizeof(int32_t)));
    DPT_CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
    DPT_CUDA_CHECK(cudaEventCreateWithFlags(&s.released, cudaEventDisableTiming));
  }
  // The buffers were zeroed on the compute stream; no copy may start before that.
  cuda::synchronize();
}

DeviceBatch::~DeviceBatch() {
  cudaStreamSynchronize(impl_->copy);  // destruction: no watchdog, copies finish on their own
  for (const void* p : impl_->pinned) cudaHostUnregister(const_cast<void*>(p));
  for (auto& s : impl_->slots) {
    cudaFree(s.y);
    cudaEventDestroy(s.copied);
    cudaEventDestroy(s.released);
  }
  cudaStreamDestroy(impl_->copy);
}

const Batch& DeviceBatch::upload(const Batch& host) {
  Impl& d = *impl_;
  // Everything enqueued so far on the compute stream belongs to the steps that read the
  // previous batch: mark its buffer released there.
  if (d.last >= 0) DPT_CUDA_CHECK(cudaEventRecord(d.slots[d.last].released, cuda::stream()));
  Impl::Slot& s = d.slots[d.next];
  const void* base = host.storage.data();
  if (!d.pinned.count(base)) {  // once per prefetch slot: page-locked memory copies asynchronously
    DPT_CUDA_CHECK(cudaHostRegister(const_cast<void*>(base),
                                    size_t(host.storage.size()) * sizeof(float),
                                    cudaHostRegisterDefault));
    d.pinned.insert(base);
  }
  if (s.used) DPT_CUDA_CHECK(cudaStreamWaitEvent(d.copy, s.released, 0));
  DPT_CUDA_CHECK(cudaMemcpyAsync(s.x.data(), host.x.data(), size_t(host.x.size()) * sizeof(float),
                                 cudaMemcpyHostToDevice, d.copy));
  DPT_CUDA_CHECK(cudaMemcpyAsync(s.y, host.y.data(), size_t(host.n) * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, d.copy));
  DPT_CUDA_CHECK(cudaEventRecord(s.copied, d.copy));
  DPT_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), s.copied, 0));
  s.used = true;
  s.batch.n = host.n;
  s.batch.x = Tensor::view(s.x.data(), host.x.shape(), Device::kCuda);
  s.batch.y.assign(host.y.begin(), host.y.begin() + host.n);  // host labels, for the confusion
  s.batch.device_labels = s.y;
  d.last = d.next;
  d.next = 1 - d.next;
  return s.batch;
}

void DeviceBatch::wait_for_copies() {
  if (impl_->last >= 0) DPT_CUDA_CHECK(cudaEventSynchronize(impl_->slots[impl_->last].copied));
}

}  // namespace dpt
