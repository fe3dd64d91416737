// Checkpoints end to end: bit-exact resume on 2 ranks, stop signals, torn files, bad checkpoints,
// eval.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>
#include <filesystem>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "data/hdf5_util.h"
#include "models/model.h"
#include "state_compare.h"
#include "test_helpers.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace dpt::testing {
namespace {

const std::string kMpirun = kMpiEnv + "timeout 300 mpirun --oversubscribe ";

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("ckpt");
    const auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir_ +
                       "/data --shards 4");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override { remove_tree(dir_); }  // also after a failed SetUp
  // A small mnist_convnet run; extra: more --set/--resume arguments.
  std::string train_cmd(int ranks, const std::string& run, const std::string& extra) const {
    return (ranks > 1 ? kMpirun + "-np " + std::to_string(ranks) + " " : std::string()) +
           dptrain() + " train " + source_dir() +
           "/configs/mnist_convnet.yaml --set data.dir=" + dir_ + "/data --set run_dir=" + dir_ +
           "/" + run +
           " --set data.max_train_samples=600 --set data.max_test_samples=400"
           " --set train.batch_size=64 --set train.log_every_steps=2 " +
           extra;
  }
  std::string ckpt_dir(const std::string& run) const { return dir_ + "/" + run + "/checkpoints"; }
  std::string dir_;
};

std::string newest(const std::string& dir) { return newest_checkpoint(dir, nullptr); }

TEST_F(Checkpoints, ResumeOnTwoRanksIsBitExact) {
  auto r = run(train_cmd(2, "straight", "--set train.epochs=3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(train_cmd(2, "split", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(train_cmd(2, "split", "--set train.epochs=3 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Resume: from "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 1/3"), std::string::npos) << "epoch 1 ran again:\n" << r.output;
  const std::string a = newest(ckpt_dir("straight")), b = newest(ckpt_dir("split"));
  ASSERT_NE(a, "");
  EXPECT_EQ(a.substr(a.rfind('/')), b.substr(b.rfind('/')));
  expect_identical_state(a, b);
}

// Note [own max-pool kernel]: the CPU picks the max-pool kernel, and the pick changes no bit of
// the training (mnist_convnet's pools carry the ReLU moved behind them).
TEST_F(Checkpoints, EitherMaxPoolKernelTrainsToTheSameBits) {
  for (const char* k : {"own", "onednn"}) {
    const auto r =
        run(std::string("DPT_MAX_POOL=") + k + " " + train_cmd(1, k, "--set train.epochs=1"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(std::string("CPU kernels: max pooling on ") +
                            (k == std::string("own") ? "dptrain's NHWC kernel" : "oneDNN") +
                            " (DPT_MAX_POOL=" + k + ")"),
              std::string::npos)
        << r.output;
  }
  expect_identical_state(newest(ckpt_dir("own")), newest(ckpt_dir("onednn")));
}

// Note [own kernels below AVX-512]: a kernel variable set to something else is an error at start
// on every rank, naming it; --version shows the error instead of failing.
TEST_F(Checkpoints, UnknownKernelChoiceIsRefusedAtStartNamingTheVariable) {
  for (const std::string var : {"DPT_MAX_POOL", "DPT_CONV"}) {
    const auto r = run(var + "=fast " + train_cmd(2, "bad-" + var, "--set train.epochs=1"));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(var + " is 'fast'; expected own or onednn"), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("Epoch 1/"), std::string::npos) << r.output;
    const auto v = run(var + "=fast " + dptrain() + " --version");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find(var + " is 'fast'"), std::string::npos) << v.output;
  }
}

TEST_F(Checkpoints, SignalMidEpochCheckpointsAndResumeMatchesStraightRun) {
  auto r = run(train_cmd(2, "straight", "--set train.epochs=2 --set checkpoint.every_epochs=0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Start the same run, send SIGUSR1 to mpirun (which forwards it) once metrics appear.
  const std::string csv = dir_ + "/sig/metrics.csv";
  // mpirun itself (not `timeout`) must get the signal: it forwards SIGUSR1 to the ranks.
  std::string cmd = train_cmd(2, "sig", "--set train.epochs=2 --set checkpoint.every_epochs=0");
  cmd.replace(cmd.find(kMpirun), kMpirun.size(), kMpiEnv + "mpirun --oversubscribe ");
  r = run("(" + cmd +
          " & pid=$!; for i in $(seq 600); do"
          " [ \"$( { wc -l < " +
          csv +
          "; } 2>/dev/null || echo 0)\" -ge 3 ] && break;"
          " sleep 0.05; done; kill -USR1 $pid; wait $pid; echo EXIT=$?)");
  ASSERT_NE(r.output.find("EXIT=75"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Stop signal 10 received"), std::string::npos) << r.output;
  const std::string stopped = newest(ckpt_dir("sig"));
  ASSERT_NE(stopped, "") << r.output;
  r = run(
      train_cmd(2, "sig", "--set train.epochs=2 --set checkpoint.every_epochs=0 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_identical_state(newest(ckpt_dir("straight")), newest(ckpt_dir("sig")));
}

// Note [lookahead]: a checkpoint between two syncs holds fast weights that differ from the slow
// ones; the slow weights travel as optimizer state, so resuming there is exact too.
TEST_F(Checkpoints, LookaheadResumesExactlyFromBetweenTwoSyncs) {
  const std::string la =
      "--set 'train.lookahead={every_steps: 3, decay: 0.8, ramp_power: 1}' "
      "--set train.epochs=2 --set checkpoint.every_steps=13 --set checkpoint.keep=20 ";
  auto r = run(train_cmd(2, "straight", la));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string mid = ckpt_dir("straight") + "/ckpt-0001-00000026.h5";  // 26 % 3 != 0
  ASSERT_TRUE(std::filesystem::exists(mid)) << run("ls " + ckpt_dir("straight")).output;
  r = run(train_cmd(2, "split", la + "--resume " + mid));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Resume: from " + mid), std::string::npos) << r.output;
  expect_identical_state(newest(ckpt_dir("straight")), newest(ckpt_dir("split")));
  // Without the slow weights the resumed run would differ: they are in the file.
  h5::Handle f = h5::open_file(mid);
  EXPECT_TRUE(h5::exists(f, "/optimizer/lookahead")) << mid;
}

TEST_F(Checkpoints, TornNewestCheckpointIsSkippedByResumeAuto) {
  auto r = run(train_cmd(1, "torn", "--set train.epochs=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string good = newest(ckpt_dir("torn"));
  // A crash mid-write leaves either a temporary file or (on a broken filesystem) a cut file.
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(ckpt_dir("torn") + "/ckpt-0009-00009999.h5", std::ios::binary)
      << bytes.substr(0, bytes.size() / 2);
  std::ofstream(ckpt_dir("torn") + "/ckpt-0009-00009998.h5.tmp-123", std::ios::binary) << bytes;
  r = run(train_cmd(1, "torn", "--set train.epochs=3 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipping '" + ckpt_dir("torn") + "/ckpt-0009-00009999.h5'"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Resume: from " + good), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Epoch 3/3"), std::string::npos);
}

// Runs a failing resume and checks that nothing in the run directory changed.
class BadResume : public Checkpoints {
 protected:
  void SetUp() override {
    Checkpoints::SetUp();
    const auto r = run(train_cmd(1, "run", "--set train.epochs=1"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ckpt_ = newest(ckpt_dir("run"));
    before_ = snapshot();
  }
  std::string snapshot() const {
    return run("cd " + dir_ + "/run && find . -type f | sort | xargs md5sum").output;
  }
  void expect_refused(const std::string& extra, const std::string& message) {
    const auto r = run(train_cmd(2, "run", "--set train.epochs=2 " + extra));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.exit_code, 124) << "hung:\n" << r.output;
    EXPECT_NE(r.output.find("rank 0: error:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_EQ(snapshot(), before_) << "the failed resume changed the run directory";
  }
  std::string ckpt_, before_;
};

TEST_F(BadResume, AnotherModel) {
  expect_refused(
      "--set model.layers.2.conv2d.filters=32 --resume " + ckpt_,
      "is of another model: layer 2 is 'conv2d_1:Conv2D(11, 11, 64) kernel(3, 3, 32, 64)");
}

// A checkpoint of a run without train.lookahead has no slow weights: resuming it with lookahead
// switched on is refused naming train.lookahead, not the optimizer (whose state is all there).
TEST_F(BadResume, LookaheadSwitchedOnIsNamedNotTheOptimizer) {
  expect_refused("--set 'train.lookahead={every_steps: 2}' --resume " + ckpt_,
                 "has no lookahead state (it holds: m v): it was written by a run without "
                 "train.lookahead; resume it without train.lookahead");
}

// Another optimizer (SGD with momentum needs "velocity") still names train.optimizer, and the
// states the file does hold.
TEST_F(BadResume, AnotherOptimizerIsNamed) {
  expect_refused("--set 'train.optimizer={sgd: {lr: 0.1, momentum: 0.9}}' --resume " + ckpt_,
                 "has no optimizer state 'velocity' (it holds: m v): it was written with another "
                 "optimizer; set train.optimizer as in that run");
}

TEST_F(BadResume, TruncatedFile) {
  const std::string cut = dir_ + "/cut.h5";
  run("head -c 3000 " + ckpt_ + " > " + cut);
  expect_refused("--resume " + cut, "truncated or corrupt");
}

TEST_F(BadResume, NewerFormatVersion) {
  const std::string newer = dir_ + "/newer.h5";
  run("cp " + ckpt_ + " " + newer);
  {
    h5::Handle f(H5Fopen(newer.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    H5Adelete(f, "format_version");
    h5::set_attr(f, "format_version", int64_t{99});
  }
  expect_refused("--resume " + newer, "format version 99");
}

TEST_F(BadResume, MissingDataset) {
  const std::string holed = dir_ + "/holed.h5";
  run("cp " + ckpt_ + " " + holed);
  {
    h5::Handle f(H5Fopen(holed.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(H5Ldelete(f, "/model/dense/bias", H5P_DEFAULT), 0);
  }
  expect_refused("--resume " + holed, "has no dataset '/model/dense/bias'");
}

TEST_F(BadResume, MissingFile) { expect_refused("--resume " + dir_ + "/nope.h5", "no such file"); }

TEST_F(Checkpoints, EvalReportsTheSameAccuracyAloneAndOnTwoRanks) {
  auto r = run(train_cmd(1, "ev", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const YAML::Node s = YAML::LoadFile(dir_ + "/ev/summary.yaml");
  const std::string ckpt = newest(ckpt_dir("ev"));
  const std::string test_file = dir_ + "/data/mnist-test.h5";
  r = run(dptrain() + " eval " + ckpt + " --data " + test_file + " --predictions " + dir_ +
          "/p1.csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(10000 samples)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("confusion matrix"), std::string::npos);
  EXPECT_NE(r.output.find("per-class accuracy"), std::string::npos);
  const auto r2 = run(kMpirun + "-np 2 " + dptrain() + " eval " + ckpt + " --data " + test_file +
                      " --predictions " + dir_ + "/p2.csv");
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  auto accuracy_line = [](const std::string& out) {
    return out.substr(out.find("accuracy: "), 16);
  };
  EXPECT_EQ(accuracy_line(r.output), accuracy_line(r2.output));
  EXPECT_EQ(run("md5sum < " + dir_ + "/p1.csv").output, run("md5sum < " + dir_ + "/p2.csv").output);
  EXPECT_EQ(run("wc -l < " + dir_ + "/p1.csv").output, "10001\n");
  (void)s;
}

}  // namespace
}  // namespace dpt::testing
