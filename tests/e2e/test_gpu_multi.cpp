// Two ranks on two GPUs through the CLI (skip without 2 GPUs): one visible GPU per rank, as
// srun --gpus-per-task=1 arranges, and a stopped peer that must end the job, not hang it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/device_memory.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe ";

class TwoGpus : public ::testing::Test {
 protected:
  void SetUp() override {
    if (gpu_count() < 2) GTEST_SKIP() << "needs 2 GPUs on this node (found " << gpu_count() << ")";
    tmp_ = std::make_unique<TempDir>("gpu2");
    dir_ = tmp_->path();
    ASSERT_EQ(run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir_ +
                  "/data --shards 2")
                  .exit_code,
              0);
  }
  std::string args(const std::string& extra) const {
    return source_dir() +
           "/configs/mnist_convnet.yaml --set train.backend=cuda"
           " --set data.dir=" +
           dir_ + "/data --set run_dir=" + dir_ + "/run " + extra;
  }
  std::unique_ptr<TempDir> tmp_;
  std::string dir_;
};

TEST_F(TwoGpus, OneVisibleGpuPerRankTrains) {
  // Each rank sees only the GPU of its local rank, as a per-task launcher sets it up.
  std::ofstream(dir_ + "/one_gpu.sh")
      << "#!/bin/sh\nexport CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK\nexec \"$@\"\n";
  run("chmod +x " + dir_ + "/one_gpu.sh");
  const auto r = run(kMpirun + "-np 2 " + dir_ + "/one_gpu.sh " + dptrain() + " train " +
                     args("--set train.epochs=1 --set data.max_train_samples=2000"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gradients all-reduced with nccl"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Test: 10000 samples"), std::string::npos) << r.output;
}

TEST_F(TwoGpus, StoppedPeerEndsTheJobWithinTheTimeout) {
  std::ofstream(dir_ + "/wrap.sh")
      << "#!/bin/sh\necho $$ > " << dir_ << "/rank1.pid\nexec \"$@\"\n";
  run("chmod +x " + dir_ + "/wrap.sh");
  const std::string a = args("--set train.epochs=50 --set train.collective_timeout_s=5");
  const std::string cmd = kMpirun + "-np 1 " + dptrain() + " train " + a + " : -np 1 " + dir_ +
                          "/wrap.sh " + dptrain() + " train " + a + " > " + dir_ + "/out.txt 2>&1";
  const pid_t pid = spawn_shell(cmd);
  for (int i = 0; i < 1200 && run("test -s " + dir_ + "/run/metrics.csv").exit_code != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const pid_t rank1 = pid_t(std::atol(read_file(dir_ + "/rank1.pid").c_str()));
  ASSERT_GT(rank1, 0);
  ::kill(rank1, SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0, rc = -1;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5 + 10)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(rank1, SIGCONT);
  if (rc == -1) {  // still hanging: end what we started, then fail
    ::kill(rank1, SIGKILL);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  EXPECT_EQ(rc, 4) << read_file(dir_ + "/out.txt");
  EXPECT_NE(read_file(dir_ + "/out.txt").find("stalled"), std::string::npos)
      << read_file(dir_ + "/out.txt");
}

}  // namespace
}  // namespace dpt::testing
