// The CUDA side of a CPU-only build (Caffe's STUB_GPU): every GPU kernel and device call says
// that this dptrain has no CUDA; host-only memory operations still work.
#include <cstring>

#include "core/device_memory.h"
#include "core/error.h"
#include "models/kernels/precision_support.h"
#include "models/kernels/update_rules.h"
#include "models/layers/activation.h"
#include "models/layers/batch_norm.h"
#include "models/layers/conv2d.h"
#include "models/layers/dense.h"
#include "models/layers/rescaling.h"
#include "models/layers/dropout.h"
#include "models/layers/pool2d.h"
#include "models/layers/softmax_cross_entropy.h"

#ifndef DPT_WITH_CUDA
namespace dpt {

namespace {
[[noreturn]] void no_cuda() {
  DPT_FAIL("this dptrain was built without CUDA; use train.backend: cpu or rebuild with "
           "-DDPT_WITH_CUDA=ON on a machine with the CUDA toolkit, cuDNN and NCCL");
}
}  // namespace

#define DPT_NO_CUDA_KERNELS(Op)                                                              \
  void Op::forward_cuda(const Tensor&, Tensor&, const StepContext&) { no_cuda(); }          \
  void Op::backward_cuda(const Tensor&, const Tensor&, const Tensor&, Tensor*) { no_cuda(); }
#define DPT_NO_CUDA_STATE(Op) \
  template <>                 \
  void BackendDeleter<Op::CudaState>::operator()(Op::CudaState*) const {}

DPT_NO_CUDA_KERNELS(Activation)
DPT_NO_CUDA_STATE(Activation)
DPT_NO_CUDA_KERNELS(BatchNorm)
DPT_NO_CUDA_STATE(BatchNorm)
DPT_NO_CUDA_KERNELS(Conv2D)
DPT_NO_CUDA_STATE(Conv2D)
DPT_NO_CUDA_KERNELS(Dense)
DPT_NO_CUDA_STATE(Dense)
DPT_NO_CUDA_KERNELS(Dropout)
DPT_NO_CUDA_KERNELS(Pool2D)
DPT_NO_CUDA_KERNELS(Rescaling)
DPT_NO_CUDA_STATE(Pool2D)

LossStats SoftmaxCrossEntropy::compute_cuda(const Tensor&, const int32_t*, Tensor*, float, float) {
  no_cuda();
}

void sgd_update_cuda(float*, const float*, float*, int64_t, const SgdRule&, float) { no_cuda(); }
void lookahead_sync_cuda(float*, float*, int64_t, float) { no_cuda(); }
void adam_update_cuda(float*, const float*, float*, float*, int64_t, const AdamRule&) { no_cuda(); }

void check_precision_cuda(Precision) { no_cuda(); }
PrecisionChoice auto_precision_cuda() { no_cuda(); }
bool cuda_available() { return false; }
int gpu_count() { return 0; }
std::string gpu_library_versions() { return ""; }
void select_gpu(int, int) { no_cuda(); }
int current_gpu() { return -1; }
float* device_alloc(size_t) { no_cuda(); }
void device_free(void*) {}
void copy_memory(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes) {
  if (dst_device || src_device) no_cuda();
  if (dst != src) std::memcpy(dst, src, bytes);
}
bool all_finite_on_device(const float*, size_t) { no_cuda(); }
void zero_memory(void* p, bool device, size_t bytes) {
  if (device) no_cuda();
  std::memset(p, 0, bytes);
}

}  // namespace dpt
#endif
