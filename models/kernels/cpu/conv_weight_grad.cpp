// im2col + SGEMM weight and bias gradient of a convolution (Note [own conv weight gradient]).
#include "models/kernels/cpu/conv_weight_grad.h"

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

KernelChoice& choice() {
  static KernelChoice c = choose_kernel("DPT_CONV_WEIGHT_GRAD");
  return c;
}

}  // namespace

bool conv_weight_grad_own() { return choice().own; }
void set_conv_weight_grad_own(bool own) { choice() = {own, "set by the caller"}; }
const char* conv_weight_grad_reason() { return choice().reason.c_str(); }

bool conv_weight_grad_pays(const ConvShape& s) { return s.g.kh * s.g.kw * s.c >= 64; }

ConvWeightGrad::ConvWeightGrad(const ConvShape& s) : s_(s) {
  k_ = s.g.kh * s.g.kw * s.c;
  k1_ = k_ + (s.bias ? 1 : 0);
  pixels_ = s.n * s.g.h.out * s.g.w.out;
  chunk_ = std::clamp<int64_t>(kChunkBytes / (k1_ * int64_t(sizeof(float))), 1, pixels_);
  col_.resize(size_t(chunk_ * k1_));
  acc_.resize(size_t(k1_ * s.filters));
}

void ConvWeightGrad::im2col(const float* x, int64_t first, int64_t rows) {
  const Window2D& g = s_.g;
  const int64_t oh = g.h.out, ow = g.w.out, C = s_.c;
  const size_t row_bytes = size_t(C) * sizeof(float);
#pragma omp parallel for schedule(static)
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

void ConvWeightGrad::run(const float* x, const float* dy, float* dw, float* db) {
  const int64_t F = s_.filters;
  for (int64_t first = 0; first < pixels_; first += chunk_) {
    const int64_t rows = std::min(chunk_, pixels_ - first);
    im2col(x, first, rows);
    // Row-major: acc (k1 x F) = col^T (k1 x rows) * dy (rows x F), accumulating after chunk 1.
    const dnnl_status_t st =
        dnnl_sgemm('T', 'N', k1_, F, rows, 1.0f, col_.data(), k1_, dy + first * F, F,
                   first == 0 ? 0.0f : 1.0f, acc_.data(), F);
    DPT_CHECK(st == dnnl_success, "convolution weight gradient: dnnl_sgemm failed (status "
                                      << int(st) << ")");
  }
  std::memcpy(dw, acc_.data(), size_t(k_ * F) * sizeof(float));
  if (s_.bias) std::memcpy(db, acc_.data() + k_ * F, size_t(F) * sizeof(float));
}

}  // namespace dpt::cpu
