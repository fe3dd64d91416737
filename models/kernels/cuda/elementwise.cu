// Small CUDA kernels shared by the layers: padding, cropping, transposes, bias, fills.
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

// One block per column chunk; columns are few (units), rows many (batch): sum in double.
__global__ void bias_grad_kernel(const float* dy, float* db, int64_t rows, int64_t cols) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < cols;
       j += int64_t(blockDim.x) * gridDim.x) {
    double s = 0;
    for (int64_t i = 0; i < rows; ++i) s += dy[i * cols + j];
    db[j] = float(s);
  }
}

__global__ void fill_kernel(float* p, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    p[i] = v;
}

}  // namespace

void pad_nhwc(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
              int64_t pb, int64_t pl, int64_t pr, float value) {
  const int64_t oh = h + pt + pb, ow = w + pl + pr;
  pad_kernel<<<blocks_for(n * oh * ow * c), 256, 0, stream()>>>(x, out, n, h, w, c, pt, pl, oh, ow, value);
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
  bias_grad_kernel<<<blocks_for(cols, 128), 128, 0, stream()>>>(dy, db, rows, cols);
  DPT_CUDA_LAUNCH_CHECK();
}

void fill(float* p, int64_t n, float v) {
  fill_kernel<<<blocks_for(n), 256, 0, stream()>>>(p, n, v);
  DPT_CUDA_LAUNCH_CHECK();
}

}  // namespace dpt::cuda
