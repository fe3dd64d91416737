// Dropout on the GPU with the same Philox blocks as the CPU: one thread per block of 4 elements.
#include "core/philox.h"
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

void apply_mask(const float* in, float* out, int64_t n, float rate, uint64_t seed, uint32_t rank,
                uint64_t step, uint32_t layer) {
  const PhiloxKey key = philox_key(seed, rank);
  dropout_kernel<<<cuda::blocks_for((n + 3) / 4), 256, 0, cuda::stream()>>>(
      in, out, n, rate, 1.0f / (1.0f - rate), key.k0, key.k1, uint32_t(step), uint32_t(step >> 32),
      uint32_t(RandomStream::kDropout) + layer);
  DPT_CUDA_LAUNCH_CHECK();
}

// The identity (inference, rate 0) stays on the compute stream: no host synchronisation.
void copy_on_stream(float* dst, const float* src, int64_t n) {
  DPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice,
                                 cuda::stream()));
}
}  // namespace

void Dropout::forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx) {
  last_ = ctx;
  if (passes_through(ctx)) return copy_on_stream(y.data(), x.data(), x.size());
  apply_mask(x.data(), y.data(), x.size(), rate_, ctx.seed, ctx.rank, ctx.step, uint32_t(index()));
}

void Dropout::backward_cuda(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  if (passes_through(last_)) return copy_on_stream(dx->data(), dy.data(), dy.size());
  apply_mask(dy.data(), dx->data(), dy.size(), rate_, last_.seed, last_.rank, last_.step,
             uint32_t(index()));
}

}  // namespace dpt
