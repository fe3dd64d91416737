// Shape: the dimensions of a tensor (batch first, then H, W, C as Keras writes them).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace dpt {

using Shape = std::vector<int64_t>;

// Above this many elements a tensor (8 GiB of float) is a config or file that lies, not a
// CNN on MNIST or CIFAR-10: refused before any allocation or byte count can overflow.
constexpr int64_t kMaxTensorElements = int64_t{1} << 31;

// The product of the dimensions; a negative dimension, an overflow or a product above
// kMaxTensorElements is an error naming the shape.
inline int64_t num_elements(const Shape& s) {
  int64_t n = 1;
  bool bad = false;
  for (int64_t d : s) bad = bad || d < 0 || __builtin_mul_overflow(n, d, &n);
  if (bad || n > kMaxTensorElements) {
    std::string dims;
    for (size_t i = 0; i < s.size(); ++i) dims += (i ? ", " : "") + std::to_string(s[i]);
    DPT_FAIL("a tensor of shape (" << dims << ") is too large (over " << kMaxTensorElements
                                   << " elements, 8 GiB): check the layer sizes and "
                                      "batch_size in the config");
  }
  return n;
}

// "(28, 28, 1)"; with_batch prefixes "None, " as Keras' summary does.
inline std::string shape_str(const Shape& s, bool with_batch = false) {
  std::string out = "(";
  if (with_batch) out += s.empty() ? "None" : "None, ";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

inline Shape with_batch(int64_t n, const Shape& sample) {
  Shape s{n};
  s.insert(s.end(), sample.begin(), sample.end());
  return s;
}

}  // namespace dpt
