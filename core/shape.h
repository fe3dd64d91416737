// Shape: the dimensions of a tensor (batch first, then H, W, C as Keras writes them).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dpt {

using Shape = std::vector<int64_t>;

inline int64_t num_elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
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
