// The device side of a CPU-only build (kernels/cuda/cuda_context.cu's twin): every GPU call says
// that this dptrain has no CUDA; host-only memory operations still work. Each op's own GPU
// stub sits at the end of its CPU kernel file (models/kernels/no_cuda.h).
#include <cstring>

#include "core/device_memory.h"
#include "core/error.h"
#include "models/kernels/no_cuda.h"
#include "models/kernels/precision_support.h"

#ifndef DPT_WITH_CUDA
namespace dpt {

void fail_no_cuda() {
  DPT_FAIL(
      "this dptrain was built without CUDA; use train.backend: cpu or rebuild with "
      "-DDPT_WITH_CUDA=ON on a machine with the CUDA toolkit, cuDNN and NCCL");
}

void check_precision_cuda(Precision) { fail_no_cuda(); }
PrecisionChoice auto_precision_cuda() { fail_no_cuda(); }
bool cuda_available() { return false; }
int gpu_count() { return 0; }
std::string gpu_library_versions() { return ""; }
void select_gpu(int, int) { fail_no_cuda(); }
int current_gpu() { return -1; }
std::string current_gpu_uuid() { return ""; }
float* device_alloc(size_t) { fail_no_cuda(); }
void device_free(void*) {}
void copy_memory(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes) {
  if (dst_device || src_device) fail_no_cuda();
  if (dst != src) std::memcpy(dst, src, bytes);
}
bool all_finite_on_device(const float*, size_t) { fail_no_cuda(); }
void zero_memory(void* p, bool device, size_t bytes) {
  if (device) fail_no_cuda();
  std::memset(p, 0, bytes);
}

}  // namespace dpt
#endif
