// The fp32 SGEMM rate of this process's threads, the yardstick dptrain profile rates layers by.
#pragma once

namespace dpt::cpu {

// GFLOP/s of oneDNN's dnnl_sgemm on n x n x n matrices with this process's OpenMP threads:
// the best of `reps` timed calls after one warm-up (2 n^3 FLOPs each).
double sgemm_gflops(int n = 2048, int reps = 10);

}  // namespace dpt::cpu
