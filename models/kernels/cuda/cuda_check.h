// Checking macros for CUDA, cuDNN, cuBLAS and NCCL calls: failures become dpt::Error with file:line.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"

#define DPT_CUDA_CHECK(call)                                                                  \
  do {                                                                                        \
    const cudaError_t dpt_e_ = (call);                                                        \
    if (dpt_e_ != cudaSuccess)                                                                \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": "                  \
                     << cudaGetErrorString(dpt_e_));                                          \
  } while (0)

#define DPT_CUDNN_CHECK(call)                                                                 \
  do {                                                                                        \
    const cudnnStatus_t dpt_s_ = (call);                                                      \
    if (dpt_s_ != CUDNN_STATUS_SUCCESS)                                                       \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": "                  \
                     << cudnnGetErrorString(dpt_s_));                                         \
  } while (0)

#define DPT_CUBLAS_CHECK(call)                                                                \
  do {                                                                                        \
    const cublasStatus_t dpt_b_ = (call);                                                     \
    if (dpt_b_ != CUBLAS_STATUS_SUCCESS)                                                      \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": cuBLAS status "    \
                     << int(dpt_b_));                                                         \
  } while (0)

// Kernel launches report errors asynchronously; check the launch itself at once.
#define DPT_CUDA_LAUNCH_CHECK() DPT_CUDA_CHECK(cudaGetLastError())
