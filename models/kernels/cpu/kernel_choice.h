// A CPU kernel choice made once per process: dptrain's own kernel or oneDNN's, by an environment
// variable when set, else by the ISA oneDNN dispatches to.
#pragma once
#include <string>

namespace dpt::cpu {

// Note [own kernels below AVX-512]: dptrain's own kernels (max pooling, convolutions on im2col
// + SGEMM) were measured faster than oneDNN 2.6's on an AVX2 Zen 3 and slower or unmeasured on
// AVX-512 (docs/RESULTS.md), so below AVX-512 they run by default. ENV=own|onednn overrides
// (benchmarks, tests); any other value is refused, naming the variable.
struct KernelChoice {
  bool own;
  std::string reason;  // "oneDNN dispatches to avx2", "DPT_MAX_POOL=own"
};
KernelChoice choose_kernel(const char* env);

}  // namespace dpt::cpu
