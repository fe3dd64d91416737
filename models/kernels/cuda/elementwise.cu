// Small CUDA kernels shared by the layers: padding, cropping, transposes, bias, fills.
#include <cuda_bf16.h>

#include <algorithm>

#include "models/kernels/cuda/cudnn_util.cuh"
#include "models/kernels/cuda/elementwise.cuh"

namespace dpt::cuda {

namespace {

__global__ void pad_kernel(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c,
                           int64_t pt, int64_t pl, int64_t oh, int64_t ow, float value) {
  const int64_t total = n * oh * ow * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t ch = i % c, xo = (i / c) % ow, yo = (i / (c * ow)) % oh, b = i / (c * ow * oh);
    const int64_t yi = yo - pt, xi = xo - pl;
    out[i] = (yi >= 0 && yi < h && xi >= 0 && xi < w) ? x[((b * h + yi) * w + xi) * c + ch] : value;
  }
}

__global__ void crop_kernel(const float* padded, float* out, int64_t n, int64_t h, int64_t w,
                            int64_t c, int64_t pt, int64_t pl, int64_t ph, int64_t pw) {
  const int64_t total = n * h * w * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t ch = i % c, x = (i / c) % w, y = (i / (c * w)) % h, b = i / (c * w * h);
    out[i] = padded[((b * ph + y + pt) * pw + x + pl) * c + ch];
  }
}

__global__ void transpose_kernel(const float* in, float* out, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[c * rows + r] = in[i];
  }
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] += b[i % cols];
}

// One block per column: its threads stride over the rows (the batch, the long side) and meet
// in a shared-memory tree; sums in double. A fixed reduction order: deterministic.
constexpr int kReduceThreads = 256;
__global__ void bias_grad_kernel(const float* dy, float* db, int64_t rows, int64_t cols) {
  __shared__ double part[kReduceThreads];
  for (int64_t j = blockIdx.x; j < cols; j += gridDim.x) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) s += dy[i * cols + j];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) db[j] = float(part[0]);
    __syncthreads();
  }
}

__global__ void to_bf16_kernel(const float* in, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void from_bf16_kernel(const __nv_bfloat16* in, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    out[i] = __bfloat162float(in[i]);
}

__global__ void fill_kernel(float* p, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    p[i] = v;
}

__global__ void affine_kernel(const float* x, float* y, int64_t n, float s, float b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = s * x[i] + b;
}

}  // namespace

void pad_nhwc(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
              int64_t pb, int64_t pl, int64_t pr, float value) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  pad_kernel<<<blocks_for(n * oh * ow * c), 256, 0, stream()>>>(x, out, n, h, w, c, pt, pl, oh, ow,
                                                                value);
  DPT_CUDA_LAUNCH_CHECK();
}

void crop_nhwc(const float* padded, float* out, int64_t n, int64_t h, int64_t w, int64_t c,
               int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  crop_kernel<<<blocks_for(n * h * w * c), 256, 0, stream()>>>(padded, out, n, h, w, c, pt, pl,
                                                               h + pt + pb, w + pl + pr);
  DPT_CUDA_LAUNCH_CHECK();
}

void transpose(const float* in, float* out, int64_t rows, int64_t cols) {
  transpose_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(in, out, rows, cols);
  DPT_CUDA_LAUNCH_CHECK();
}

void add_bias(float* y, const float* b, int64_t rows, int64_t cols) {
  add_bias_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(y, b, rows, cols);
  DPT_CUDA_LAUNCH_CHECK();
}

void bias_grad(const float* dy, float* db, int64_t rows, int64_t cols) {
  bias_grad_kernel<<<int(std::min<int64_t>(cols, 65535)), kReduceThreads, 0, stream()>>>(
      dy, db, rows, cols);
  DPT_CUDA_LAUNCH_CHECK();
}

const void* Bf16Buffer::from(const float* src, int64_t n) {
  to_bf16_kernel<<<blocks_for(n), 256, 0, stream()>>>(src, static_cast<__nv_bfloat16*>(data()), n);
  DPT_CUDA_LAUNCH_CHECK();
  return data();
}

void Bf16Buffer::to(float* dst, int64_t n) {
  from_bf16_kernel<<<blocks_for(n), 256, 0, stream()>>>(static_cast<const __nv_bfloat16*>(data()),
                                                        dst, n);
  DPT_CUDA_LAUNCH_CHECK();
}

void fill(float* p, int64_t n, float v) {
  fill_kernel<<<blocks_for(n), 256, 0, stream()>>>(p, n, v);
  DPT_CUDA_LAUNCH_CHECK();
}

void affine(const float* x, float* y, int64_t n, float s, float b) {
  affine_kernel<<<blocks_for(n), 256, 0, stream()>>>(x, y, n, s, b);
  DPT_CUDA_LAUNCH_CHECK();
}

}  // namespace dpt::cuda
