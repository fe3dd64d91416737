// Checking macros for CUDA, cuDNN, cuBLAS and NCCL calls: failures become dpt::Error with
// file:line.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace dpt::cuda {
// Errors a kernel raises while it runs surface at the next call that synchronises, whose
// file:line is then not the culprit's: say so, and how to find the kernel.
inline std::string error_text(cudaError_t e) {
  std::string s = cudaGetErrorString(e);
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
      s += " (raised by a kernel launched earlier, not necessarily here; rerun with "
           "CUDA_LAUNCH_BLOCKING=1 and DPT_CUDA_CHECK_KERNELS=1 to name it)";
      break;
    default:
      break;
  }
  return s;
}
// DPT_CUDA_CHECK_KERNELS=1: synchronise after every kernel launch, so that a failing kernel
// is reported at its own launch (slow; for debugging).
inline bool check_every_kernel() {
  static const bool on = [] {
    const char* v = std::getenv("DPT_CUDA_CHECK_KERNELS");
    return v && std::string(v) == "1";
  }();
  return on;
}
}  // namespace dpt::cuda

#define DPT_CUDA_CHECK(call)                                                 \
  do {                                                                       \
    const cudaError_t dpt_e_ = (call);                                       \
    if (dpt_e_ != cudaSuccess)                                               \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": " \
                     << ::dpt::cuda::error_text(dpt_e_));                    \
  } while (0)

#define DPT_CUDNN_CHECK(call)                                                \
  do {                                                                       \
    const cudnnStatus_t dpt_s_ = (call);                                     \
    if (dpt_s_ != CUDNN_STATUS_SUCCESS)                                      \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": " \
                     << cudnnGetErrorString(dpt_s_));                        \
  } while (0)

#define DPT_CUBLAS_CHECK(call)                                               \
  do {                                                                       \
    const cublasStatus_t dpt_b_ = (call);                                    \
    if (dpt_b_ != CUBLAS_STATUS_SUCCESS)                                     \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": " \
                     << cublasGetStatusString(dpt_b_));                      \
  } while (0)

// Kernel launches report errors asynchronously; check the launch itself at once (and, with
// DPT_CUDA_CHECK_KERNELS=1, the kernel's run too).
#define DPT_CUDA_LAUNCH_CHECK()                                                     \
  do {                                                                              \
    DPT_CUDA_CHECK(cudaGetLastError());                                             \
    if (::dpt::cuda::check_every_kernel()) DPT_CUDA_CHECK(cudaDeviceSynchronize()); \
  } while (0)
