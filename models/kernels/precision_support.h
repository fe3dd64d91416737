// Whether this machine can run a precision: oneDNN's CPU ISA, the GPU's compute capability.
#pragma once
#include "core/precision.h"

namespace dpt {

// A clear error naming what was found when p cannot run here (kernels/cpu/dnnl_context.cpp,
// kernels/cuda/cuda_context.cu; a CPU-only build's no_cuda.cpp refuses any GPU).
void check_precision_cpu(Precision p);
void check_precision_cuda(Precision p);  // for the GPU this process selected
inline void check_precision(Precision p, bool on_gpu) {
  if (on_gpu) {
    check_precision_cuda(p);
  } else {
    check_precision_cpu(p);
  }
}

}  // namespace dpt
