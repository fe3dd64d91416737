// The process's GPU context: one compute stream, cuDNN and cuBLAS handles (selection:
// core/device_memory.h).
#pragma once
#include <functional>

#include "models/kernels/cuda/cuda_check.h"

namespace dpt::cuda {

cudaStream_t stream();  // all compute runs here, in order
cudnnHandle_t cudnn();
cublasHandle_t cublas();
// Waits for the compute stream, polling (Note [polled waits] in cuda_context.cu).
void synchronize();
// Called with the seconds waited so far while synchronize() polls; may throw to end the wait.
void set_watchdog(std::function<void(double)> watchdog);

// Blocks and threads for an element-wise kernel over n elements; at least one block, so that
// a launch over nothing (lookahead of a model without trainable parameters) is still valid.
inline int blocks_for(int64_t n, int threads = 256) {
  return int(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, 65535)));
}

}  // namespace dpt::cuda
