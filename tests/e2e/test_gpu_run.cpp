// A whole training run on the GPU against the same run on the CPU (skips without a GPU):
// several batches with a partial last one, validation, checkpoints, SGD without momentum.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/device_memory.h"
#include "data/hdf5_util.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

std::vector<double> column(const std::string& csv_path, int col) {
  std::ifstream in(csv_path);
  std::string line;
  std::getline(in, line);
  std::vector<double> v;
  while (std::getline(in, line)) {
    std::istringstream cells(line);
    std::string cell;
    for (int c = 0; c <= col; ++c) std::getline(cells, cell, ',');
    v.push_back(cell.empty() ? -1 : std::stod(cell));
  }
  return v;
}

std::vector<float> dataset(const std::string& file, const std::string& ds) {
  h5::Handle f = h5::open_file(file);
  const auto dims = h5::dims_of(f, ds, file);
  size_t n = 1;
  for (auto d : dims) n *= d;
  std::vector<float> v(n);
  h5::read_f32(f, ds, v.data(), file);
  return v;
}

TEST(GpuRun, MatchesTheCpuRunWithinTolerance) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA build or no usable GPU on this machine";
  const TempDir tmp("gpurun");
  const std::string& dir = tmp.path();
  ASSERT_EQ(run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
                "/data --shards 1")
                .exit_code,
            0);
  // 300 samples, 10% validation: 270 to train in batches of 64 -> 4 full and one of 14.
  const std::string common =
      dptrain() + " train " + source_dir() +
      "/configs/cifar10_small.yaml --set data.dataset=mnist --set data.dir=" + dir +
      "/data"
      " --set model.input=[28,28,1] --set data.max_train_samples=300 --set "
      "data.max_test_samples=500"
      " --set data.validation_split=0.1 --set data.augment={} --set train.batch_size=64"
      " --set train.epochs=2 --set 'train.optimizer={sgd: {lr: 0.05}}' --set "
      "train.log_every_steps=1";
  auto r = run(common + " --set run_dir=" + dir + "/cpu --set train.backend=cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(common + " --set run_dir=" + dir + "/gpu --set train.backend=cuda");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Metrics: every interval's loss and accuracy, and validation (tolerance 1e-3 relative).
  for (int col : {2, 3, 4, 5}) {
    const auto a = column(dir + "/cpu/metrics.csv", col), b = column(dir + "/gpu/metrics.csv", col);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(a[i], b[i], 1e-3 * (1 + std::fabs(a[i])))
          << "metrics.csv row " << i << " col " << col;
  }
  // Checkpoints: every parameter within 1e-3 relative (FP32 on both; reduction orders differ).
  const std::string name =
      "/checkpoints/" + trim_newline(run("ls " + dir + "/cpu/checkpoints | tail -1").output);
  for (const char* ds : {"/model/conv2d/kernel", "/model/conv2d_2/bias", "/model/dense/kernel",
                         "/model/dense_1/kernel"}) {
    const auto a = dataset(dir + "/cpu" + name, ds), b = dataset(dir + "/gpu" + name, ds);
    ASSERT_EQ(a.size(), b.size()) << ds;
    int bad = 0;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::fabs(a[i] - b[i]) > 1e-3 * (1 + std::fabs(a[i])) && ++bad <= 5)
        ADD_FAILURE() << ds << "[" << i << "]: cpu " << a[i] << " gpu " << b[i];
  }
}

}  // namespace
}  // namespace dpt::testing
