// A real one-node Slurm (slurm-wlm + munge): the project's CPU sbatch script submitted unchanged,
// run to completion, and stopped by its warning signal, requeued, resumed and completed.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <thread>

#include "slurm/slurm_jobs.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

class SlurmCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run("command -v slurmctld && command -v munged").exit_code != 0)
      GTEST_SKIP()
          << "slurm-wlm and munge are not installed (scripts/install-deps.sh installs them)";
    scratch_ = temp_dir("slurm");
    const auto r = run("bash " + source_dir() + "/tests/slurm/cluster.sh start " + scratch_);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    started_ = true;
    work_ = scratch_ + "/work";
    const auto p = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + work_ +
                       "/data --shards 4");
    ASSERT_EQ(p.exit_code, 0) << p.output;
  }
  void TearDown() override {  // runs whether the test passed or failed
    if (started_) run("bash " + source_dir() + "/tests/slurm/cluster.sh stop " + scratch_);
    remove_tree(scratch_);
  }
  std::string slurm(const std::string& cmd) const {
    return "SLURM_CONF=" + scratch_ + "/slurm.conf " + cmd;
  }
  // Submits slurm/train_cpu.sbatch as it is in the repository; returns the job id.
  std::string submit(const std::string& run_dir, const std::string& sets) {
    const auto r = run(slurm("DPTRAIN=" + dptrain() + " sbatch --parsable --chdir=" + work_ + " " +
                             source_dir() + "/slurm/train_cpu.sbatch " + source_dir() +
                             "/configs/mnist_convnet.yaml --set data.dir=" + work_ +
                             "/data --set run_dir=" + work_ + "/" + run_dir + " " + sets));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output.substr(0, r.output.find_first_not_of("0123456789"));
  }
  std::string job_field(const std::string& job, const std::string& field) const {
    return jobs().field(job, field);
  }
  std::string wait_done(const std::string& job, int seconds, int restarts = 0) const {
    return jobs().wait_done(job, seconds, restarts);
  }
  SlurmJobs jobs() const { return SlurmJobs("SLURM_CONF=" + scratch_ + "/slurm.conf "); }
  std::string job_log(const std::string& job) {
    return run("cat " + work_ + "/slurm-dptrain-" + job + ".out").output;
  }
  std::string scratch_, work_;
  bool started_ = false;
};

TEST_F(SlurmCluster, CpuScriptRunsToCompletion) {
  const std::string job = submit("run",
                                 "--set train.epochs=1 --set data.max_train_samples=800"
                                 " --set data.max_test_samples=500");
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(wait_done(job, 240), "COMPLETED") << job_log(job);
  EXPECT_EQ(job_field(job, "ExitCode"), "0:0");
  const std::string log = job_log(job);
  EXPECT_NE(log.find("on 2 rank(s) (mpi)"), std::string::npos) << log;  // srun + PMIx, no mpirun
  const YAML::Node s = YAML::LoadFile(work_ + "/run/summary.yaml");
  EXPECT_EQ(s["world_size"].as<int>(), 2);
  EXPECT_EQ(s["test_samples"].as<int>(), 500);
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.5) << log;
  EXPECT_EQ(run("ls " + work_ + "/run/checkpoints/ckpt-0001-*.h5").exit_code, 0);
  EXPECT_NE(run("cat " + work_ + "/run/metrics.csv").output.find("epoch,step,loss"),
            std::string::npos);
}

TEST_F(SlurmCluster, WarningSignalCheckpointsRequeuesAndResumes) {
  const std::string job = submit("run",
                                 "--set train.epochs=2 --set data.max_train_samples=2000"
                                 " --set data.max_test_samples=500 --set train.log_every_steps=2");
  ASSERT_FALSE(job.empty());
  // The time-limit warning, early: the same SIGUSR1 that --signal=USR1@180 sends to the steps.
  const std::string csv = work_ + "/run/metrics.csv";
  bool training = false;
  for (int i = 0; i < 600 && !training; ++i) {
    training = run("[ $(wc -l < " + csv + ") -ge 3 ]").exit_code == 0;
    if (!training) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(training) << job_log(job);
  ASSERT_EQ(run(slurm("scancel --signal=USR1 " + job)).exit_code, 0);
  ASSERT_EQ(wait_done(job, 400, 1), "COMPLETED") << job_log(job);
  const std::string log = job_log(job);
  EXPECT_NE(log.find("Stop signal 10 received: checkpointing"), std::string::npos) << log;
  EXPECT_NE(log.find("requeueing job " + job), std::string::npos) << log;
  EXPECT_NE(log.find("(restart 1)"), std::string::npos) << log;
  EXPECT_NE(log.find("Resume: from " + work_ + "/run/checkpoints/ckpt-0001-"), std::string::npos)
      << log;
  EXPECT_NE(log.find("Epoch 2/2"), std::string::npos) << log;
  EXPECT_GE(std::stoi(job_field(job, "Restarts")), 1);
  const YAML::Node s = YAML::LoadFile(work_ + "/run/summary.yaml");
  EXPECT_EQ(s["test_samples"].as<int>(), 500);
  EXPECT_EQ(run("ls " + work_ + "/run/checkpoints/ckpt-0002-*.h5").exit_code, 0) << log;
}

}  // namespace
}  // namespace dpt::testing
