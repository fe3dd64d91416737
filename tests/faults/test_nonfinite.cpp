// Faults, item 1: non-finite training is detected on every rank, never checkpointed, never resumed.
#include <cmath>
#include <limits>

#include "fault_helpers.h"
#include "trainer/config.h"

namespace dpt::testing {

namespace {

// A linear stack (no activation to saturate) with a huge learning rate overflows to inf/NaN
// within a few steps: the most reliable divergence there is.
const std::string kDiverge =
    "--set 'model.layers=[{flatten: {}}, {dense: {units: 32}}, {dense: {units: 32}}, "
    "{dense: {units: 10}}]' --set 'train.optimizer={sgd: {lr: 1000, momentum: 0.9}}'";
const std::string kLinear =
    "--set 'model.layers=[{flatten: {}}, {dense: {units: 32}}, {dense: {units: 32}}, "
    "{dense: {units: 10}}]' --set 'train.optimizer={sgd: {lr: 0.01, momentum: 0.9}}'";

class NonFinite : public FaultTest {};

TEST_F(NonFinite, ConfigRefusesAdamEpsilonZero) {
  const auto r = run(train_cmd("eps", "--set 'train.optimizer={adam: {lr: 0.001, epsilon: 0}}'"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train.optimizer.adam.epsilon"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("must be greater than 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(from --set train.optimizer="), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("(line 1)"), std::string::npos) << r.output;
}

TEST_F(NonFinite, DivergingRunStopsOnEveryRankAndKeepsTheGoodCheckpoints) {
  auto r = run(train_cmd("R", kLinear + " --set train.epochs=2", 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string before = snapshot(ckpt_dir("R"));
  const std::string good = newest("R");
  r = run(train_cmd("R", kDiverge + " --set train.epochs=5 --resume auto", 2));
  EXPECT_EQ(r.exit_code, 3) << r.output;  // kExitNonFinite
  EXPECT_NE(r.output.find("rank 0: error: non-finite loss or gradient"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("first in layer 'dense"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(also on rank 1)"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("MPI_ABORT"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(ckpt_dir("R")), before) << "a diverged run touched the checkpoints";
  // The good checkpoint still evaluates to a finite loss.
  r = run(dptrain() + " eval " + good + " --data " + data() + "/mnist-test.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("nan"), std::string::npos) << r.output;
}

TEST_F(NonFinite, SkipModeCountsSkippedStepsAndGivesUpWhenNothingRecovers) {
  const auto r = run(train_cmd("S", kDiverge + " --set train.nonfinite=skip --set train.epochs=4"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("Warning: skipped step: non-finite"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the run does not recover"), std::string::npos) << r.output;
  // metrics.csv: the last column counts skipped steps per row.
  std::istringstream csv(read_file(dir_ + "/S/metrics.csv"));
  std::string line;
  std::getline(csv, line);
  ASSERT_NE(line.find(",skipped_steps"), std::string::npos) << line;
  int64_t skipped = 0;
  while (std::getline(csv, line)) skipped += std::stoll(line.substr(line.rfind(',') + 1));
  EXPECT_GE(skipped, 10);
}

// Writes NaN into one dataset of a copy of a checkpoint (through HDF5, so its checksum is
// right): only the finiteness check can catch it.
std::string poisoned_copy(const std::string& src, const std::string& dst, const std::string& ds) {
  run("cp " + src + " " + dst);
  h5::Handle f(H5Fopen(dst.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  h5::Handle d(H5Dopen2(f, ds.c_str(), H5P_DEFAULT), H5Dclose);
  h5::Handle space(H5Dget_space(d), H5Sclose);
  std::vector<float> v(size_t(H5Sget_simple_extent_npoints(space)));
  H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  v[v.size() / 2] = std::numeric_limits<float>::quiet_NaN();
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  return dst;
}

TEST_F(NonFinite, EvalAndResumeRefuseNonFiniteCheckpointsAndAutoFallsBack) {
  auto r = run(train_cmd("R", "--set train.epochs=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string newest_good = newest("R");
  const std::string nan_params = poisoned_copy(newest_good, dir_ + "/p.h5", "/model/dense/kernel");
  r = run(dptrain() + " eval " + nan_params + " --data " + data() + "/mnist-test.h5");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("non-finite values (NaN or infinity) in /model/dense/kernel"),
            std::string::npos)
      << r.output;
  const std::string nan_opt =
      poisoned_copy(newest_good, dir_ + "/o.h5", "/optimizer/m/conv2d/kernel");
  r = run(train_cmd("R", "--set train.epochs=3 --resume " + nan_opt));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("in /optimizer/m/conv2d/kernel"), std::string::npos) << r.output;
  // The newest file in the directory is the poisoned one: --resume auto skips it, says so and
  // continues from the one before.
  const std::string planted = ckpt_dir("R") + "/ckpt-0002-00009999.h5";
  run("cp " + nan_params + " " + planted);
  r = run(train_cmd("R", "--set train.epochs=3 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Resume: skipping '" + planted + "': checkpoint"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Resume: from " + newest_good), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing
