// The CLI under mpirun: a 2-rank training run, and ranks with different models stopping fast.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>

#include "../unit/test_helpers.h"

namespace dpt::testing {
namespace {

const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 timeout 300 "
    "mpirun --oversubscribe ";

TEST(MpiCli, TwoRanksTrainAndReportOnce) {
  const std::string dir = temp_dir("mpi");
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(kMpirun + "-np 2 " + dptrain() + " train " + DPT_SOURCE_DIR +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run --set train.epochs=1 --set data.max_train_samples=1500 --set data.max_test_samples=1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_EQ(s["world_size"].as<int>(), 2);
  EXPECT_EQ(s["test_samples"].as<int>(), 1000);  // the test file split across ranks, each once
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.8) << r.output;
  // Rank 0 alone speaks: one epoch line, one test line.
  size_t count = 0;
  for (size_t p = r.output.find("Test: "); p != std::string::npos; p = r.output.find("Test: ", p + 1))
    ++count;
  EXPECT_EQ(count, 1u) << r.output;
}

TEST(MpiCli, DifferentModelsOnRanksStopWithinSeconds) {
  const std::string dir = temp_dir("mismatch");
  const std::string base = std::string(DPT_SOURCE_DIR) + "/configs/mnist_convnet.yaml";
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run(kMpirun + "-np 1 " + dptrain() + " train " + base + " --set run_dir=" + dir +
                     " : -np 1 " + dptrain() + " train " + base + " --set run_dir=" + dir +
                     " --set model.layers.2.conv2d.filters=48");
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out: a rank hung\n" << r.output;
  EXPECT_LT(secs, 60.0);
  EXPECT_NE(r.output.find("rank 1: error: this rank's model differs from rank 0's at layer 2"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conv2d_1:Conv2D(11, 11, 48)"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing
