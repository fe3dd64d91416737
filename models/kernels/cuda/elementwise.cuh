// Small CUDA kernels shared by the layers: padding, cropping, transposes, bias, fills.
#pragma once
#include <cstdint>

#include "models/kernels/cuda/cuda_context.h"

namespace dpt::cuda {

// NHWC copy of x (n, h, w, c) into a zero- (or `value`-) padded (n, h+pt+pb, w+pl+pr, c).
void pad_nhwc(const float* x, float* out, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
              int64_t pb, int64_t pl, int64_t pr, float value);
// The inverse: the interior of a padded gradient back into (n, h, w, c).
void crop_nhwc(const float* padded, float* out, int64_t n, int64_t h, int64_t w, int64_t c,
               int64_t pt, int64_t pb, int64_t pl, int64_t pr);
// out (cols x rows) = in (rows x cols) transposed, both row-major.
void transpose(const float* in, float* out, int64_t rows, int64_t cols);
// y[i, j] += b[j] for an (rows, cols) matrix; db[j] = sum_i dy[i, j].
void add_bias(float* y, const float* b, int64_t rows, int64_t cols);
void bias_grad(const float* dy, float* db, int64_t rows, int64_t cols);
void fill(float* p, int64_t n, float v);
// y[i] = s * x[i] + b (x may be y).
void affine(const float* x, float* y, int64_t n, float s, float b);

}  // namespace dpt::cuda
