// DeviceBatch: pinned host batches copied asynchronously to the GPU on a dedicated stream.
#include "models/kernels/cuda/cuda_context.h"
#include "trainer/device_batch.h"

namespace dpt {

DeviceBatch::DeviceBatch(int64_t capacity, const Shape& sample)
    : x_(with_batch(capacity, sample), Device::kCuda) {
  DPT_CUDA_CHECK(cudaMalloc(&y_, size_t(capacity) * sizeof(int32_t)));
  DPT_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
  DPT_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
}

DeviceBatch::~DeviceBatch() {
  for (const void* p : pinned_) cudaHostUnregister(const_cast<void*>(p));
  cudaFree(y_);
  cudaEventDestroy(done_);
  cudaStreamDestroy(copy_);
}

const Batch& DeviceBatch::upload(const Batch& host) {
  const size_t xbytes = size_t(host.x.size()) * sizeof(float);
  const void* base = host.storage.data();
  if (!pinned_.count(base)) {  // once per prefetch slot: page-locked memory copies asynchronously
    DPT_CUDA_CHECK(cudaHostRegister(const_cast<void*>(base), size_t(host.storage.size()) * sizeof(float),
                                    cudaHostRegisterDefault));
    pinned_.insert(base);
  }
  DPT_CUDA_CHECK(cudaMemcpyAsync(x_.data(), host.x.data(), xbytes, cudaMemcpyHostToDevice, copy_));
  DPT_CUDA_CHECK(cudaMemcpyAsync(y_, host.y.data(), size_t(host.n) * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, copy_));
  DPT_CUDA_CHECK(cudaEventRecord(done_, copy_));
  DPT_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), done_, 0));
  batch_.n = host.n;
  batch_.x = Tensor::view(x_.data(), host.x.shape(), Device::kCuda);
  batch_.y_device = y_;
  return batch_;
}

}  // namespace dpt
