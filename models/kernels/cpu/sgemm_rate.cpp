// sgemm_gflops: dnnl_sgemm timed on square matrices (the roofline's denominator).
#include "models/kernels/cpu/sgemm_rate.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/error.h"

namespace dpt::cpu {

double sgemm_gflops(int n, int reps) {
  std::vector<float> a(size_t(n) * size_t(n), 0.5f), b(a.size(), 0.25f), c(a.size(), 0.0f);
  double best = 1e30;
  for (int i = 0; i <= reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const dnnl_status_t st = dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                                        c.data(), n);
    DPT_CHECK(st == dnnl_success, "dnnl_sgemm failed (status " << int(st) << ")");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::min(best, s);  // call 0 warms up caches and oneDNN's kernels
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

}  // namespace dpt::cpu
