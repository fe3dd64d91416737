// Max pooling, dptrain's NHWC kernel against oneDNN's, forward + backward at the zoo's pooling
// shapes (Note [own max-pool kernel]): the measurement behind the kernel each CPU picks.
// usage: OMP_NUM_THREADS=1 build/dpt_bench_pool [repeats]; prints one Markdown table.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/cpu_info.h"
#include "models/kernels/cpu/max_pool_nhwc.h"
#include "models/kernels/precision_support.h"
#include "models/layer_factory.h"
#include "models/layers/pool2d.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape4 {
  const char* where;
  int64_t n, h, w, c;
  bool relu;  // the ReLU moved behind the pool (Note [relu after pool])
};

// Median milliseconds of one forward + backward of a fresh max_pool layer on this kernel.
double time_pool(const Shape4& s, dpt::cpu::MaxPoolKernel k, int repeats) {
  dpt::cpu::set_max_pool_kernel(k);
  std::map<std::string, int> names;
  auto layer = dpt::make_layer(YAML::Load("max_pool: {pool: 2}"), "bench", names);
  if (s.relu) static_cast<dpt::Pool2D&>(*layer).set_post_activation(dpt::Act::kRelu);
  const dpt::Shape in{s.h, s.w, s.c}, out = layer->output_shape(in);
  dpt::Tensor x({s.n, s.h, s.w, s.c}), y(dpt::with_batch(s.n, out)), dy(y.shape()), dx(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = float((i * 7919) % 1013) / 1013.0f - 0.5f;
  for (int64_t i = 0; i < dy.size(); ++i) dy.data()[i] = float((i * 104729) % 997) / 997.0f - 0.5f;
  const dpt::StepContext ctx{dpt::Mode::kTrain, 1, 0, 0};
  std::vector<double> ms;
  for (int r = 0; r < repeats + 3; ++r) {  // the first three warm caches and plans
    const auto t0 = Clock::now();
    layer->forward(x, y, ctx);
    layer->backward(x, y, dy, &dx);
    if (r >= 3) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + long(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 200;
  // The zoo's max pools at each config's per-rank batch on 2 ranks.
  const Shape4 shapes[] = {
      {"mnist_convnet pool 1", 64, 26, 26, 32, true},
      {"mnist_convnet pool 2", 64, 11, 11, 64, true},
      {"mnist_cnn", 64, 28, 28, 64, false},
      {"mnist_fast pool 1", 32, 26, 26, 16, false},
      {"cifar10_cnn block 1", 32, 32, 32, 32, false},
      {"cifar10_fast block 1", 512, 31, 31, 64, false},
  };
  std::printf("CPU: %s; oneDNN dispatches to %s; %d thread(s); median of %d\n\n",
              dpt::cpu_description().c_str(), dpt::cpu_isa_name().c_str(), omp_get_max_threads(),
              repeats);
  std::printf(
      "| pool (N x H x W x C) | oneDNN ms | dptrain kernel ms | oneDNN / dptrain "
      "|\n|---|---|---|---|\n");
  for (const Shape4& s : shapes) {
    const double a = time_pool(s, dpt::cpu::MaxPoolKernel::kOneDnn, repeats);
    const double b = time_pool(s, dpt::cpu::MaxPoolKernel::kOwn, repeats);
    std::printf("| %s (%lldx%lldx%lldx%lld%s) | %.3f | %.3f | %.2fx |\n", s.where, (long long)s.n,
                (long long)s.h, (long long)s.w, (long long)s.c, s.relu ? ", relu" : "", a, b,
                a / b);
  }
  return 0;
}
