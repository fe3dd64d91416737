// Device memory in a build without CUDA: every request is a clear error.
#include <cstring>

#include "models/core/error.h"
#include "models/tensor/device_memory.h"

#ifndef DPT_WITH_CUDA
namespace dpt {

bool cuda_available() { return false; }
std::string gpu_library_versions() { return ""; }
float* device_alloc(size_t) {
  DPT_FAIL("this dptrain was built without CUDA; use train.backend: cpu or rebuild with "
           "-DDPT_WITH_CUDA=ON on a machine with the CUDA toolkit, cuDNN and NCCL");
}
void device_free(void*) {}
void copy_memory(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes) {
  DPT_CHECK(!dst_device && !src_device, "this dptrain was built without CUDA");
  if (dst != src) std::memcpy(dst, src, bytes);
}

bool all_finite_on_device(const float*, size_t) {
  DPT_FAIL("this dptrain was built without CUDA");
}

void zero_memory(void* p, bool device, size_t bytes) {
  DPT_CHECK(!device, "this dptrain was built without CUDA");
  std::memset(p, 0, bytes);
}

}  // namespace dpt
#endif
