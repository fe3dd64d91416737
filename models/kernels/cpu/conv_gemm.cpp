// im2col + SGEMM convolution passes (Note [own conv GEMM]).
#include "models/kernels/cpu/conv_gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "models/kernels/cpu/kernel_choice.h"

namespace dpt::cpu {
namespace {

// col's size per chunk: measured on the Zen 3 (512 KiB L2 per core), 1-4 MiB ran alike.
constexpr int64_t kChunkBytes = int64_t{2} << 20;
// Below this many floats a loop runs on one thread: a parallel region's start and barrier
// cost more than the copy (and, on a busy machine, wait for a descheduled thread).
constexpr int64_t kParallelFloats = int64_t{1} << 15;

KernelChoice& choice() {
  static KernelChoice c = choose_kernel("DPT_CONV");
  return c;
}

// Row-major C (m x n) = alpha op(A) op(B) + beta C, failing loudly.
void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const char* what) {
  const dnnl_status_t st = dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  DPT_CHECK(st == dnnl_success, "convolution " << what << ": dnnl_sgemm failed (status "
                                               << int(st) << ")");
}

}  // namespace

bool conv_gemm_own() { return choice().own; }
void set_conv_gemm_own(bool own) { choice() = {own, "set by the caller"}; }
const char* conv_gemm_reason() { return choice().reason.c_str(); }

bool conv_gemm_pays(const ConvShape& s) { return s.g.kh * s.g.kw * s.c >= 64; }

bool conv_gemm_pays_forward_and_data(const ConvShape& s) {
  const Window2D& g = s.g;
  return conv_gemm_pays(s) && g.h.pad_lo + g.h.pad_hi + g.w.pad_lo + g.w.pad_hi == 0;
}

ConvGemm::ConvGemm(const ConvShape& s) : s_(s) {
  k_ = s.g.kh * s.g.kw * s.c;
  k1_ = k_ + (s.bias ? 1 : 0);
  const int64_t per_image = s.g.h.out * s.g.w.out;
  pixels_ = s.n * per_image;
  const int64_t fit = kChunkBytes / (k1_ * int64_t(sizeof(float)));
  chunk_ = std::clamp<int64_t>(fit, 1, pixels_);
  images_per_chunk_ = std::clamp<int64_t>(fit / per_image, 1, s.n);
  col_.resize(size_t(std::max(chunk_, images_per_chunk_ * per_image) * k1_));
  acc_.resize(size_t(k1_ * s.filters));
  w_ext_.resize(size_t(k1_ * s.filters));
}

void ConvGemm::im2col(const float* x, int64_t first, int64_t rows) {
  const Window2D& g = s_.g;
  const int64_t oh = g.h.out, ow = g.w.out, C = s_.c;
  const size_t row_bytes = size_t(C) * sizeof(float);
#pragma omp parallel for schedule(static) if (rows * k1_ > kParallelFloats)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = first + r, n = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
    float* dst = col_.data() + r * k1_;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t iy = oy * g.sh - g.h.pad_lo + i;
      for (int64_t j = 0; j < g.kw; ++j, dst += C) {
        const int64_t ix = ox * g.sw - g.w.pad_lo + j;
        if (iy < 0 || iy >= s_.h || ix < 0 || ix >= s_.w) {
          std::memset(dst, 0, row_bytes);  // padding
        } else {
          std::memcpy(dst, x + ((n * s_.h + iy) * s_.w + ix) * C, row_bytes);
        }
      }
    }
    if (s_.bias) *dst = 1.0f;
  }
}

void ConvGemm::forward(const float* x, const float* w, const float* b, float* y, bool relu) {
  const int64_t F = s_.filters;
  std::memcpy(w_ext_.data(), w, size_t(k_ * F) * sizeof(float));
  if (s_.bias) std::memcpy(w_ext_.data() + k_ * F, b, size_t(F) * sizeof(float));
  for (int64_t first = 0; first < pixels_; first += chunk_) {
    const int64_t rows = std::min(chunk_, pixels_ - first);
    im2col(x, first, rows);
    float* out = y + first * F;
    sgemm('N', 'N', rows, F, k1_, col_.data(), k1_, w_ext_.data(), F, 0.0f, out, F, "forward");
    if (!relu) continue;
    // +0.0 where y <= 0, as oneDNN's ReLU (alpha 0) gives.
#pragma omp parallel for simd schedule(static) if (rows * F > kParallelFloats)
    for (int64_t i = 0; i < rows * F; ++i) out[i] = out[i] > 0.0f ? out[i] : 0.0f;
  }
}

void ConvGemm::weight_grad(const float* x, const float* dy, float* dw, float* db) {
  const int64_t F = s_.filters;
  for (int64_t first = 0; first < pixels_; first += chunk_) {
    const int64_t rows = std::min(chunk_, pixels_ - first);
    im2col(x, first, rows);
    // acc (k1 x F) = col^T (k1 x rows) * dy (rows x F), accumulating after the first chunk.
    sgemm('T', 'N', k1_, F, rows, col_.data(), k1_, dy + first * F, F, first == 0 ? 0.0f : 1.0f,
          acc_.data(), F, "weight gradient");
  }
  std::memcpy(dw, acc_.data(), size_t(k_ * F) * sizeof(float));
  if (s_.bias) std::memcpy(db, acc_.data() + k_ * F, size_t(F) * sizeof(float));
}

void ConvGemm::data_grad(const float* dy, const float* w, float* dx) {
  const int64_t F = s_.filters, per_image = s_.g.h.out * s_.g.w.out;
  for (int64_t first = 0; first < s_.n; first += images_per_chunk_) {
    const int64_t images = std::min(images_per_chunk_, s_.n - first);
    // dcol (rows x K) = dy (rows x F) * W^T, W being (K x F); col's rows are K apart here.
    sgemm('N', 'T', images * per_image, k_, F, dy + first * per_image * F, F, w, F, 0.0f,
          col_.data(), k_, "data gradient");
    gather(dx, first, images);
  }
}

// dx[n][iy][ix][:] = the sum over the kernel positions (i, j) that put input pixel (iy, ix)
// under output pixel (oy, ox) of dcol[(n, oy, ox)][(i, j, :)], in (i, j) order.
void ConvGemm::gather(float* dx, int64_t first_image, int64_t images) {
  const Window2D& g = s_.g;
  const int64_t oh = g.h.out, ow = g.w.out, C = s_.c, H = s_.h, W = s_.w;
#pragma omp parallel for schedule(static) if (images * H * W * C > kParallelFloats)
  for (int64_t row = 0; row < images * H; ++row) {
    const int64_t local = row / H, iy = row % H;
    for (int64_t ix = 0; ix < W; ++ix) {
      float* __restrict out = dx + (((first_image + local) * H + iy) * W + ix) * C;
      std::memset(out, 0, size_t(C) * sizeof(float));
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ty = iy + g.h.pad_lo - i;
        if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= oh) continue;
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t tx = ix + g.w.pad_lo - j;
          if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= ow) continue;
          const float* __restrict in =
              col_.data() + ((local * oh + ty / g.sh) * ow + tx / g.sw) * k_ + (i * g.kw + j) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) out[c] += in[c];
        }
      }
    }
  }
}

}  // namespace dpt::cpu
