// all_finite(): whether a float buffer holds no NaN or infinity, in one branch-free pass.
#pragma once
#include <cstdint>

namespace dpt {

// x * 0 is 0 for every finite x and NaN for NaN or +-inf, so one sum answers for the whole
// buffer; the loop has no early exit and vectorises.
inline bool all_finite(const float* p, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += p[i] * 0.0f;
  return acc == 0.0f;
}

}  // namespace dpt
