// The CUDA side of an op in a CPU-only build (Caffe's STUB_GPU): each op's CPU kernel file ends
// with one of these lines, so that a new op brings its stub along instead of a central list.
#pragma once
#include "core/error.h"

namespace dpt {

// What every GPU entry point of a CPU-only build says.
[[noreturn]] void fail_no_cuda();

}  // namespace dpt

#ifdef DPT_WITH_CUDA
#define DPT_NO_CUDA_KERNELS(Op)
#define DPT_NO_CUDA_STATE(Op)
#else
// Op::forward_cuda and Op::backward_cuda (kernels/cuda/X_cuda.cu in a CUDA build).
#define DPT_NO_CUDA_KERNELS(Op)                                                                \
  void Op::forward_cuda(const Tensor&, Tensor&, const StepContext&) { ::dpt::fail_no_cuda(); } \
  void Op::backward_cuda(const Tensor&, const Tensor&, const Tensor&, Tensor*) {               \
    ::dpt::fail_no_cuda();                                                                     \
  }
// The deleter of an op's CudaState (never allocated without CUDA).
#define DPT_NO_CUDA_STATE(Op) \
  template <>                 \
  void BackendDeleter<Op::CudaState>::operator()(Op::CudaState*) const {}
#endif
