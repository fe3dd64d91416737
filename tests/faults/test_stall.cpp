// Faults, item 2: a stopped rank ends the job with a report instead of a silent hang; a slow
// rank is named before it times out.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fault_helpers.h"

namespace dpt::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Starts a 2-rank run whose rank 1 goes through a wrapper that writes its PID to pidfile, so
// the test can signal exactly that process. Returns the PID of the shell running mpirun.
class TwoRankJob {
 public:
  TwoRankJob(const std::string& dir, const std::string& rank_args) : dir_(dir) {
    write_file(dir + "/wrap.sh", "#!/bin/sh\necho $$ > " + dir + "/rank1.pid\nexec \"$@\"\n");
    run("chmod +x " + dir + "/wrap.sh");
    const std::string cmd = kMpiEnv + "timeout 120 mpirun --oversubscribe -np 1 " + dptrain() +
                            " train " + rank_args + " : -np 1 " + dir + "/wrap.sh " + dptrain() +
                            " train " + rank_args + " > " + dir + "/out.txt 2>&1";
    pid_ = spawn_shell(cmd);
  }
  ~TwoRankJob() {
    // Whatever happened, nothing of ours keeps running: continue and kill the recorded rank,
    // then the launcher shell.
    const long p = rank1();
    if (p > 0 && ::kill(pid_t(p), 0) == 0) {
      ::kill(pid_t(p), SIGCONT);
      ::kill(pid_t(p), SIGKILL);
    }
    if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  long rank1() const { return std::atol(read_file(dir_ + "/rank1.pid").c_str()); }
  bool wait_for(const std::function<bool()>& cond, double seconds) const {
    const auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // The exit code of `timeout mpirun`, or -1 if it has not ended within `seconds`.
  int wait_exit(double seconds) {
    const auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  std::string output() const { return read_file(dir_ + "/out.txt"); }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

class Stall : public FaultTest {
 protected:
  std::string args(const std::string& extra) const {
    return source_dir() + "/configs/mnist_convnet.yaml --set data.dir=" + data() +
           " --set run_dir=" + dir_ + "/run --set checkpoint.every_epochs=0 " + extra;
  }
};

TEST_F(Stall, StoppedRankEndsTheJobWithExitFourNamingIt) {
  TwoRankJob job(dir_, args("--set train.epochs=20 --set train.collective_timeout_s=3"));
  // Training has begun once metrics.csv holds a row beyond its header (the header alone is
  // written before set-up's last collectives: stopped then, the stall is in a broadcast).
  ASSERT_TRUE(job.wait_for(
      [&] {
        return job.rank1() > 0 &&
               run("test $(wc -l < " + dir_ + "/run/metrics.csv) -ge 2").exit_code == 0;
      },
      60))
      << job.output();
  ASSERT_EQ(::kill(pid_t(job.rank1()), SIGSTOP), 0);
  const auto t0 = Clock::now();
  const int rc = job.wait_exit(3 + 10);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string out = job.output();
  EXPECT_EQ(rc, 4) << "(-1: still hanging after timeout + 10 s)\n" << out;
  EXPECT_LT(secs, 13.0) << out;
  EXPECT_NE(out.find("rank 0: error: stalled: the all-reduce at epoch 1/20, step"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("rank(s) 1 did not answer"), std::string::npos) << out;
}

TEST_F(Stall, SlowRankIsNamedBeforeAnyTimeout) {
  // Rank 1 is stopped 70% of the time (SIGSTOP/SIGCONT from here): a throttled node.
  TwoRankJob job(dir_, args("--set train.epochs=1 --set train.log_every_steps=5"
                            " --set data.max_train_samples=12000"));
  ASSERT_TRUE(job.wait_for(
      [&] { return job.rank1() > 0 && run("test -s " + dir_ + "/run/metrics.csv").exit_code == 0; },
      60))
      << job.output();
  throttle_until(pid_t(job.rank1()), [&] {
    return job.output().find("Warning: rank 1 is slow") != std::string::npos;
  });
  EXPECT_EQ(job.wait_exit(60), 0) << job.output();
  EXPECT_NE(job.output().find("Warning: rank 1 is slow: for 3 logging intervals"),
            std::string::npos)
      << job.output();
  EXPECT_EQ(job.output().find("rank 0 is slow"), std::string::npos) << job.output();
}

}  // namespace
}  // namespace dpt::testing
