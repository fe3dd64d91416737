// Max pooling in NHWC with non-overlapping windows, vectorised along C (Note [own max-pool
// kernel]).
#include "models/kernels/cpu/max_pool_nhwc.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "models/kernels/cpu/kernel_choice.h"

namespace dpt::cpu {
namespace {

// The input rows [lo, hi) of output index i along one axis, clipped to the input.
struct Span {
  int64_t start, lo, hi;
};
inline Span span(int64_t i, int64_t stride, int64_t pad_lo, int64_t k, int64_t in) {
  const int64_t start = i * stride - pad_lo;
  return {start, std::max<int64_t>(start, 0), std::min(start + k, in)};
}

// oneDNN's ReLU with alpha 0, forward and backward (use_dst): see Note [own max-pool kernel].
inline float relu(float v) { return v > 0.0f ? v : 0.0f; }
inline float relu_grad(float y, float dy) { return y > 0.0f ? dy : 0.0f; }

}  // namespace

namespace {

struct Choice {
  MaxPoolKernel kernel;
  std::string reason;
};

Choice& choice() {
  static Choice c = [] {
    const KernelChoice k = choose_kernel("DPT_MAX_POOL");
    return Choice{k.own ? MaxPoolKernel::kOwn : MaxPoolKernel::kOneDnn, k.reason};
  }();
  return c;
}

}  // namespace

MaxPoolKernel max_pool_kernel() { return choice().kernel; }

void set_max_pool_kernel(MaxPoolKernel k) { choice() = Choice{k, "set by the caller"}; }

const char* max_pool_kernel_reason() { return choice().reason.c_str(); }

bool own_max_pool_applies(const Window2D& g) {
  return g.sh >= g.kh && g.sw >= g.kw && g.kh * g.kw <= 255;
}

void max_pool_forward(const MaxPoolShape& s, const float* x, float* y, uint8_t* ws) {
  const Window2D& g = s.g;
  const int64_t oh = g.h.out, ow = g.w.out, C = s.c;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < s.n * oh; ++row) {
    const int64_t n = row / oh;
    const Span sh = span(row % oh, g.sh, g.h.pad_lo, g.kh, s.h);
    for (int64_t j = 0; j < ow; ++j) {
      const Span sw = span(j, g.sw, g.w.pad_lo, g.kw, s.w);
      float* __restrict out = y + (row * ow + j) * C;
      uint8_t* __restrict win = ws + (row * ow + j) * C;
      bool first = true;
      for (int64_t ih = sh.lo; ih < sh.hi; ++ih) {
        for (int64_t iw = sw.lo; iw < sw.hi; ++iw) {
          const float* __restrict in = x + ((n * s.h + ih) * s.w + iw) * C;
          const auto pos = uint8_t((ih - sh.start) * g.kw + (iw - sw.start));
          if (first) {
            std::memcpy(out, in, size_t(C) * sizeof(float));
            std::memset(win, pos, size_t(C));
            first = false;
            continue;
          }
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const bool greater = in[c] > out[c];  // strict: the first maximum wins a tie
            out[c] = greater ? in[c] : out[c];
            win[c] = greater ? pos : win[c];
          }
        }
      }
      if (s.relu) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) out[c] = relu(out[c]);
      }
    }
  }
}

void max_pool_backward(const MaxPoolShape& s, const float* y, const float* dy, const uint8_t* ws,
                       float* dx) {
  const Window2D& g = s.g;
  const int64_t oh = g.h.out, ow = g.w.out, C = s.c;
  // Windows tile the input unless strides exceed them or 'valid' drops the last rows/columns:
  // then the inputs no window covers get a zero gradient first.
  const bool tiled = g.sh == g.kh && g.sw == g.kw && oh * g.sh - g.h.pad_lo >= s.h &&
                     ow * g.sw - g.w.pad_lo >= s.w;
  if (!tiled) std::memset(dx, 0, size_t(s.n * s.h * s.w * C) * sizeof(float));
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < s.n * oh; ++row) {
    const int64_t n = row / oh;
    const Span sh = span(row % oh, g.sh, g.h.pad_lo, g.kh, s.h);
    for (int64_t j = 0; j < ow; ++j) {
      const Span sw = span(j, g.sw, g.w.pad_lo, g.kw, s.w);
      const int64_t at = (row * ow + j) * C;
      const float* __restrict d = dy + at;
      const float* __restrict out = y + at;
      const uint8_t* __restrict win = ws + at;
      for (int64_t ih = sh.lo; ih < sh.hi; ++ih) {
        for (int64_t iw = sw.lo; iw < sw.hi; ++iw) {
          float* __restrict din = dx + ((n * s.h + ih) * s.w + iw) * C;
          const auto pos = uint8_t((ih - sh.start) * g.kw + (iw - sw.start));
          if (s.relu) {
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) din[c] = win[c] == pos ? relu_grad(out[c], d[c]) : 0.0f;
          } else {
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) din[c] = win[c] == pos ? d[c] : 0.0f;
          }
        }
      }
    }
  }
}

}  // namespace dpt::cpu
