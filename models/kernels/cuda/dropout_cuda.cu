// Dropout on the GPU with the same Philox blocks as the CPU: one thread per block of 4 elements.
#include "models/core/philox.h"
#include "models/kernels/cuda/cuda_context.h"
#include "models/layers/dropout.h"

namespace dpt {

namespace {
__global__ void dropout_kernel(const float* in, float* out, int64_t n, float rate, float scale,
                               uint32_t k0, uint32_t k1, uint32_t step_lo, uint32_t step_hi,
                               uint32_t stream_id) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(blockDim.x) * gridDim.x) {
    const auto r = Philox::generate({uint32_t(b), step_lo, step_hi, stream_id}, k0, k1);
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) {
      const int64_t i = b * 4 + j;
      out[i] = Philox::to_unit(r[j]) >= rate ? in[i] * scale : 0.0f;
    }
  }
}
}  // namespace

void Dropout::apply_mask_cuda(const float* in, float* out, int64_t n, float rate, uint64_t seed,
                              uint32_t rank, uint64_t step, uint32_t layer) {
  const PhiloxKey key = philox_key(seed, rank);
  dropout_kernel<<<cuda::blocks_for((n + 3) / 4), 256, 0, cuda::stream()>>>(
      in, out, n, rate, 1.0f / (1.0f - rate), key.k0, key.k1, uint32_t(step), uint32_t(step >> 32),
      uint32_t(RandomStream::kDropout) + layer);
  DPT_CUDA_LAUNCH_CHECK();
}

}  // namespace dpt
