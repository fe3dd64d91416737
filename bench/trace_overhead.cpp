// What train.trace costs: a Span with tracing off and on, per span, in one run (medians).
// Usage: build/dpt_bench_trace [SPANS]   (prints a Markdown table; dptrain profile counts spans
// per step, so span cost x spans per step / step time is the overhead of a traced step)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/trace.h"

namespace {

// Nanoseconds per Span of `n` constructed and destroyed back to back, median of 5 runs.
double ns_per_span(int64_t n) {
  const std::string name = "conv2d_1";
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i) {
      dpt::trace::Span s("forward", name);
      asm volatile("" ::: "memory");  // the loop must not vanish
    }
    runs.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0)
                       .count() /
                   double(n));
    dpt::trace::take();  // drop what was recorded
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000000;
  dpt::trace::set_on(false);
  const double off = ns_per_span(n);
  dpt::trace::set_on(true);
  const double on = ns_per_span(n);
  dpt::trace::set_on(false);
  std::printf("| tracing | ns per span |\n|---|---|\n| off | %.2f |\n| on | %.1f |\n", off, on);
  return 0;
}
