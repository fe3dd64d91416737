// The CLI under mpirun: a 2-rank training run, and ranks with different models stopping fast.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>

#include "data/hdf5_util.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 timeout 300 "
    "mpirun --oversubscribe ";

TEST(MpiCli, TwoRanksTrainAndReportOnce) {
  const TempDir tmp("mpi");
  const std::string& dir = tmp.path();
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(kMpirun + "-np 2 " + dptrain() + " train " + source_dir() +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run --set train.epochs=1 --set data.max_train_samples=1500 --set "
          "data.max_test_samples=1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_EQ(s["world_size"].as<int>(), 2);
  EXPECT_EQ(s["test_samples"].as<int>(), 1000);  // the test file split across ranks, each once
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.8) << r.output;
  // Rank 0 alone speaks: one epoch line, one test line.
  size_t count = 0;
  for (size_t p = r.output.find("Test: "); p != std::string::npos;
       p = r.output.find("Test: ", p + 1))
    ++count;
  EXPECT_EQ(count, 1u) << r.output;
}

// A plain process (no launcher's variables) uses the one-rank communicator and never calls
// MPI_Init, so a machine whose Open MPI is broken or half there still trains (the GPU bundle's
// node). Seen from the loader: libmpi is mapped (it is linked), but none of Open MPI's
// components (mca_*.so), which MPI_Init opens, ever are.
TEST(MpiCli, OneProcessTrainsWithoutStartingMpi) {
  const TempDir tmp("nompi");
  const std::string& dir = tmp.path();
  ASSERT_EQ(run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
                "/data --shards 1")
                .exit_code,
            0);
  const auto r =
      run("LD_DEBUG=files LD_DEBUG_OUTPUT=" + dir + "/ld " + dptrain() + " train " + source_dir() +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run --set train.epochs=1"
          " --set data.max_train_samples=500 --set data.max_test_samples=200");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("on 1 rank(s) (local)"), std::string::npos) << r.output;
  const std::string trace = run("cat " + dir + "/ld.*").output;
  EXPECT_NE(trace.find("libmpi.so"), std::string::npos) << "the loader trace is empty";
  EXPECT_EQ(trace.find("mca_"), std::string::npos) << "an Open MPI component was loaded";
}

TEST(MpiCli, DifferentModelsOnRanksStopWithinSeconds) {
  const TempDir tmp("mismatch");
  const std::string& dir = tmp.path();
  const std::string base = source_dir() + "/configs/mnist_convnet.yaml";
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run(kMpirun + "-np 1 " + dptrain() + " train " + base + " --set run_dir=" + dir +
                     " : -np 1 " + dptrain() + " train " + base + " --set run_dir=" + dir +
                     " --set model.layers.2.conv2d.filters=48");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "timed out: a rank hung\n" << r.output;
  EXPECT_LT(secs, 60.0);
  EXPECT_NE(r.output.find("rank 1: error: this rank's model differs from rank 0's at layer 2"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("conv2d_1:Conv2D(11, 11, 48)"), std::string::npos) << r.output;
}

// Note: these runs are short; each checks what a user sees on the console.
TEST(MpiCli, ThreeRanksRunTheShippedConfigWithAnUnevenBatchSplit) {
  const TempDir tmp("mpi3");
  const std::string& dir = tmp.path();
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(
      kMpirun + "-np 3 " + dptrain() + " train " + source_dir() +
      "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
      "/run --set train.epochs=1 --set data.max_train_samples=700 --set data.max_test_samples=300");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("global batch 128 (43/42 per rank)"), std::string::npos) << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_EQ(s["world_size"].as<int>(), 3);
  EXPECT_EQ(s["test_samples"].as<int>(), 300);
}

// Counts lines that contain `what`.
size_t lines_with(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

void expect_one_clean_error(const RunResult& r, const std::string& message) {
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(lines_with(r.output, "dptrain: rank"), 1u) << r.output;
  EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  // MPI_Abort's banner and the teardown races behind ORTE_ERROR_LOG lines mean a rank aborted.
  EXPECT_EQ(r.output.find("MPI_ABORT"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ORTE_ERROR_LOG"), std::string::npos) << r.output;
}

TEST(MpiCli, AnErrorOnEveryRankIsReportedOnceWithoutAnAbort) {
  const TempDir tmp("err");
  for (int attempt = 0; attempt < 3; ++attempt) {  // the old abort path raced: repeat
    const auto r = run(kMpirun + "-np 2 " + dptrain() + " train " + source_dir() +
                       "/configs/mnist_convnet.yaml --set data.dir=" + tmp.path() +
                       "/missing --set run_dir=" + tmp.path() + "/run");
    expect_one_clean_error(
        r, "rank 0: error: data directory '" + tmp.path() + "/missing' does not exist");
    EXPECT_NE(r.output.find("(also on rank 1)"), std::string::npos) << r.output;
  }
}

TEST(MpiCli, AnErrorOnOneRankIsReportedOnceByRankZero) {
  const TempDir tmp("err1");
  const std::string& dir = tmp.path();
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Shard 1 (rank 1's) gets a label outside 0..9: only rank 1 finds out.
  const std::string bad = dir + "/data/mnist-train-00001-of-00002.h5";
  {
    h5::Handle f(H5Fopen(bad.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(f.get(), 0);
    std::vector<uint8_t> labels(30000);
    h5::read_u8(f, "labels", labels.data(), bad);
    labels[7] = 12;
    h5::Handle ds(H5Dopen2(f, "labels", H5P_DEFAULT), H5Dclose);
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels.data()), 0);
  }
  r = run(kMpirun + "-np 2 " + dptrain() + " train " + source_dir() +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run");
  expect_one_clean_error(r, "rank 1: error: '" + bad + "' dataset 'labels' sample 7 has label 12");
}

TEST(Cli, VersionNamesEveryLibrary) {
  const auto r = run(dptrain() + " --version");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* what :
       {"dptrain 0.", "oneDNN 2.", "dispatching to avx", "MPI 3.", "Open MPI", "HDF5 1."})
    EXPECT_NE(r.output.find(what), std::string::npos) << what << "\n" << r.output;
#ifdef DPT_WITH_CUDA
  EXPECT_NE(r.output.find("CUDA runtime 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cuDNN 9."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("NCCL 2."), std::string::npos) << r.output;
#else
  EXPECT_NE(r.output.find("CUDA backend not compiled in"), std::string::npos) << r.output;
#endif
}

TEST(Cli, UsageErrorsExitTwoWithOneLine) {
  const auto r = run(dptrain() + " prepare mnist --raw x --out y --shards 0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("dptrain: error: --shards: Value 0 not in range 1"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("1797693"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing
