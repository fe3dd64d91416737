// Sliding-window geometry shared by convolution and pooling: output size and Keras/TF padding.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"

namespace dpt {

struct Window1D {
  int64_t out = 0, pad_lo = 0, pad_hi = 0;
};

// Keras semantics: valid -> floor((in - k) / s) + 1; same -> ceil(in / s) with the extra
// padding row/column at the bottom/right, exactly as TensorFlow pads.
inline Window1D window_1d(int64_t in, int64_t k, int64_t s, bool same, const std::string& who,
                          const char* axis) {
  Window1D w;
  // Far beyond any image: also keeps (in + s - 1) and (out - 1) * s from overflowing.
  constexpr int64_t kMaxWindow = 1 << 16;
  DPT_CHECK(k <= kMaxWindow && s <= kMaxWindow,
            who << ": the " << axis << " window " << k << " with stride " << s
                << " is beyond any image (at most " << kMaxWindow
                << "); check kernel/pool and strides");
  if (same) {
    w.out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>((w.out - 1) * s + k - in, 0);
    w.pad_lo = total / 2;
    w.pad_hi = total - w.pad_lo;
  } else {
    w.out = in >= k ? (in - k) / s + 1 : 0;
  }
  DPT_CHECK(w.out >= 1, who << ": input " << axis << " " << in << " is smaller than the window "
                            << k << " with padding 'valid'; the output would be below 1x1. "
                            << "Use padding: same, a smaller window, or fewer pooling layers");
  return w;
}

struct Window2D {
  Window1D h, w;
  int64_t kh, kw, sh, sw;
};

inline Window2D window_2d(int64_t ih, int64_t iw, std::pair<int64_t, int64_t> k,
                          std::pair<int64_t, int64_t> s, bool same, const std::string& who) {
  return {window_1d(ih, k.first, s.first, same, who, "height"),
          window_1d(iw, k.second, s.second, same, who, "width"),
          k.first,
          k.second,
          s.first,
          s.second};
}

}  // namespace dpt
