// Faults, items 3-5: one run per run directory, runs never mix or delete each other's files,
// leftovers are cleaned, and full disks are errors that say so.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fault_helpers.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace dpt::testing {
namespace {

class RunDir : public FaultTest {};

TEST_F(RunDir, SecondRunOnTheSameRunDirIsRefusedNamingTheHolder) {
  // Run A holds the lock for a while (one process, so its PID is the one we start).
  const std::string a = train_cmd("run",
                                  "--set train.epochs=30 --set data.max_train_samples=3000"
                                  " --set checkpoint.every_epochs=0");
  const pid_t pid = spawn_shell("exec " + a + " > " + dir_ + "/a.txt 2>&1");
  bool started = false;
  for (int i = 0; i < 400 && !started; ++i) {
    started = read_file(dir_ + "/a.txt").find("Epoch 1/") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  const auto b = run(train_cmd("run", "--set train.epochs=1 --set train.seed=5 --resume auto"));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(started) << read_file(dir_ + "/a.txt");
  EXPECT_EQ(b.exit_code, 1) << b.output;
  EXPECT_NE(
      b.output.find("is in use by another dptrain run (PID " + std::to_string(pid) + " on host "),
      std::string::npos)
      << b.output;
  // A died without cleaning up; the kernel released its lock: the next run may go.
  const auto c = run(train_cmd("run", "--set train.epochs=1 --resume auto"));
  EXPECT_EQ(c.exit_code, 0) << c.output;
}

TEST_F(RunDir, FreshRunInAUsedRunDirIsRefusedAndOverwriteMovesTheOldRunAside) {
  auto r = run(train_cmd("S", "--set train.epochs=3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string before = snapshot(dir_ + "/S");
  r = run(train_cmd("S", "--set train.epochs=2 --set train.seed=5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("already holds files of an earlier run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume auto"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(dir_ + "/S"), before) << "a refused run changed the run directory";
  r = run(train_cmd("S", "--set train.epochs=2 --set train.seed=5 --overwrite"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Moved the earlier run's files to " + dir_ + "/S/overwritten-"),
            std::string::npos)
      << r.output;
  // Both runs' checkpoints exist; summary.yaml names a file that exists.
  EXPECT_EQ(run("ls " + dir_ + "/S/overwritten-*/ckpt-0003-*.h5").exit_code, 0);
  EXPECT_EQ(run("ls " + ckpt_dir("S") + "/ckpt-0002-*.h5").exit_code, 0);
  EXPECT_EQ(run("ls " + ckpt_dir("S") + "/ckpt-0003-*.h5").exit_code, 2) << "old run's file in use";
  const YAML::Node s = YAML::LoadFile(dir_ + "/S/summary.yaml");
  EXPECT_EQ(run("test -f " + s["checkpoint"].as<std::string>()).exit_code, 0);
}

TEST_F(RunDir, ResumeAutoOnAFinishedRunSaysSoAndChangesNothing) {
  auto r = run(train_cmd("F", "--set train.epochs=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string before = snapshot(dir_ + "/F");
  r = run(train_cmd("F", "--set train.epochs=2 --resume auto"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("the run is already complete"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 3"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(dir_ + "/F"), before);
  // Raising the epochs continues it.
  r = run(train_cmd("F", "--set train.epochs=3 --resume auto"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Epoch 3/3"), std::string::npos) << r.output;
}

TEST_F(RunDir, MetricsHaveNoRowsOfTheInterruptedRunAfterItsCheckpoint) {
  auto r = run(train_cmd("M", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // As if the run had gone on logging after its checkpoint at step 10 and been killed.
  std::string csv = read_file(dir_ + "/M/metrics.csv");
  write_file(dir_ + "/M/metrics.csv", csv +
                                          "2,12,123.456,0.5,,,0.001,100,0,1,0\n"
                                          "2,14,123.456,0.5,,,0.001,100,0,1,0\n");
  r = run(train_cmd("M", "--set train.epochs=2 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  csv = read_file(dir_ + "/M/metrics.csv");
  EXPECT_EQ(csv.find("123.456"), std::string::npos) << csv;
  std::map<std::string, int> rows_per_step;  // an interval row and an epoch row may share a step
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    const auto c1 = line.find(','), c2 = line.find(',', c1 + 1);
    EXPECT_LE(++rows_per_step[line.substr(c1 + 1, c2 - c1 - 1)], 2) << csv;
  }
}

TEST_F(RunDir, RotationDeletesOnlyThisRunsCheckpoints) {
  const Config cfg = load_config(source_dir() + "/configs/mnist_convnet.yaml");
  Model m(cfg.model, cfg.name);
  m.initialize(1);
  auto opt = make_optimizer(cfg.train.optimizer, m.num_trainable());
  TrainPosition other, mine;
  other.run_id = "other-run";
  mine.run_id = "this-run";
  other.global_step = 1;
  const std::string dir = dir_ + "/ck";
  const std::string foreign = write_checkpoint(dir, m, *opt, other, cfg.resolved, 1);
  std::string last;
  for (int64_t s = 2; s <= 4; ++s) {
    mine.global_step = s;
    last = write_checkpoint(dir, m, *opt, mine, cfg.resolved, 1);
  }
  const auto names = list_checkpoints(dir);
  ASSERT_EQ(names.size(), 2u) << run("ls " + dir).output;
  EXPECT_EQ(dir + "/" + names[0], foreign);
  EXPECT_EQ(dir + "/" + names[1], last);
}

TEST_F(RunDir, StaleTemporaryFilesOfDeadWritersAreRemovedAtStart) {
  auto r = run(train_cmd("T", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  write_file(ckpt_dir("T") + "/ckpt-0009-00000099.h5.tmp-99999", std::string(100000, 'x'));
  write_file(dir_ + "/T/summary.yaml.tmp-99998", "partial");
  r = run(train_cmd("T", "--set train.epochs=2 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Removed '" + ckpt_dir("T") + "/ckpt-0009-00000099.h5.tmp-99999'"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/T/*.tmp-* " + ckpt_dir("T") + "/*.tmp-*").exit_code, 2);
}

TEST_F(RunDir, FullDiskUnderCheckpointsIsAnErrorThatSaysSoAndLeavesNoPartialFile) {
  SmallDisk disk(dir_ + "/small", 700);  // one mnist_convnet checkpoint (~430 KB) fits, two do not
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const auto r = run(train_cmd("small/R", "--set train.epochs=3"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is full"), std::string::npos) << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/small/R/checkpoints/*.tmp-*").exit_code, 2) << "partial file left";
  const auto v = run(dptrain() + " verify " + dir_ + "/small/R/checkpoints/ckpt-0001-*.h5");
  EXPECT_EQ(v.exit_code, 0) << v.output;
}

TEST_F(RunDir, FullDiskUnderTheRunDirectoryIsAnErrorNotAnEmptySummary) {
  SmallDisk disk(dir_ + "/small", 64);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  run("mkdir -p " + dir_ + "/small/R && head -c 10000000 /dev/zero > " + dir_ + "/small/fill");
  const auto r =
      run(train_cmd("small/R", "--set train.epochs=1 --set checkpoint.dir=" + dir_ + "/ck"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is full"), std::string::npos) << r.output;
  EXPECT_EQ(run("test -e " + dir_ + "/small/R/summary.yaml").exit_code, 1);
}

}  // namespace
}  // namespace dpt::testing
