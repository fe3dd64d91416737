// Several nodes for real: Open MPI over TCP between network-namespace nodes (cluster.sh): same
// weights as one node, the node table, rank 0 alone writes, a node's missing data named, a
// partition, a lost node and a slow node, and resume on fewer nodes.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "slurm/slurm_jobs.h"
#include "state_compare.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool wait_until(const std::function<bool()>& cond, double seconds) {
  const auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// A job started in the background; its exit code, or -1 while it still runs past `seconds`.
class Job {
 public:
  Job(const std::string& cmd, const std::string& out) : out_(out) {
    pid_ = spawn_shell(cmd + " > " + out + " 2>&1");
  }
  ~Job() {  // the launcher shell, by PID; the nodes' processes go with the cluster
    if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int wait_exit(double seconds) {
    int status = 0;
    const bool ended = wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                                  seconds);
    if (!ended) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string output() const { return read_file(out_); }

 private:
  std::string out_;
  pid_t pid_ = -1;
};

class MultiNode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    // Whether this machine lets us make a network namespace at all (a chroot or container
    // may not): if not, skip; once it can, any failure to build the cluster is a failure.
    const auto can = run("bash " + source_dir() + "/tests/multinode/cluster.sh probe");
    if (can.exit_code != 0)
      GTEST_SKIP() << "cannot make network namespaces on this machine: " << can.output;
    dir_ = temp_dir("multinode");
    ASSERT_FALSE(dir_.empty()) << "no temporary directory";
    up_ = true;  // down also cleans up a half-made cluster
    const auto up = run(cluster("up") + " 2");
    ASSERT_EQ(up.exit_code, 0) << up.output;
    const auto p = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir_ +
                       "/data --shards 4");
    ASSERT_EQ(p.exit_code, 0) << p.output;
  }
  void TearDown() override {  // also after a failed or skipped SetUp
    if (up_) run(cluster("down"));
    remove_tree(dir_);
  }
  std::string cluster(const std::string& what) const {
    return "bash " + source_dir() + "/tests/multinode/cluster.sh " + what + " " + dir_ + "/cluster";
  }
  // dptrain train on the nodes of `hosts` ("node1:1,node2:1"), launched from node1 the way a
  // user on a head node would: mpirun, ranks on node2 started through the rsh agent, TCP only
  // between nodes (shared memory within one).
  std::string train(const std::string& hosts, int np, const std::string& run_name,
                    const std::string& sets, const std::string& mca = "") const {
    return kMpiEnv + "timeout 300 " + cluster("exec") + " node1 mpirun --host " + hosts +
           " -np " + std::to_string(np) + " --mca plm_rsh_agent " + dir_ +
           "/cluster/rsh-agent --mca btl tcp,vader,self --mca btl_tcp_if_include dpt0"
           " --mca oob_tcp_if_include dpt0 " +
           mca + " " + dptrain() + " train " + source_dir() +
           "/configs/mnist_convnet.yaml --set data.dir=" + dir_ + "/data --set run_dir=" + dir_ +
           "/" + run_name + " --set data.max_test_samples=500 " + sets;
  }
  std::string newest(const std::string& run_name) const {
    return newest_checkpoint(dir_ + "/" + run_name + "/checkpoints", nullptr);
  }
  bool has_checkpoint(const std::string& run_name, int epoch) const {
    char name[32];
    std::snprintf(name, sizeof name, "ckpt-%04d-", epoch);
    return run("ls " + dir_ + "/" + run_name + "/checkpoints 2>/dev/null | grep -q '^" + name + ".*h5$'")
               .exit_code == 0;
  }
  void write_setup(const std::string& node, const std::string& script) const {
    write_text(dir_ + "/cluster/" + node + ".setup", script);
  }
  std::string dir_;
  bool up_ = false;
};

// max_train_samples counts per shard: 4 shards of 1500, 5400 after the validation split.
const std::string kSmall = "--set data.max_train_samples=1500 --set train.epochs=1 ";

TEST_F(MultiNode, TwoNodesTrainTheSameWeightsAsOneNode) {
  // 2 nodes x 1 rank against 1 node x 2 ranks, same global batch: bit for bit. Open MPI picks
  // its all-reduce algorithm by message size and world size, not by transport, so TCP between
  // nodes sums in the same order as shared memory within one.
  auto a = run(train("node1:1,node2:1", 2, "two_nodes", kSmall));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto b = run(train("node1:2", 2, "one_node", kSmall));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  expect_identical_state(newest("two_nodes"), newest("one_node"));
  EXPECT_NE(a.output.find("  node1: ranks 0, local ranks 0\n  node2: ranks 1, local ranks 0"),
            std::string::npos)
      << a.output;
}

TEST_F(MultiNode, FourRanksOnTwoNodesUseTcpBetweenAndLocalRanksPerNode) {
  const auto a = run(train("node1:2,node2:2", 4, "two_nodes", kSmall,
                           "--mca btl_base_verbose 30"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto b = run(train("node1:4", 4, "one_node", kSmall));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  expect_identical_state(newest("two_nodes"), newest("one_node"));
  // Local rank (so the GPU a rank takes) is per node: 0,1 on each.
  EXPECT_NE(a.output.find("dptrain: 4 rank(s) on 2 node(s):\n"
                          "  node1: ranks 0,1, local ranks 0,1\n"
                          "  node2: ranks 2,3, local ranks 0,1"),
            std::string::npos)
      << a.output;
  // Open MPI's own log of which BTL carries each peer: TCP across nodes, shared memory (vader)
  // only within one.
  const std::regex used(R"(\[(node\d):\d+\] mca: bml: Using (\w+) btl for send to \S+ on node (node\d))");
  int across = 0, within = 0;
  std::istringstream lines(a.output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, used)) continue;
    if (m[1] != m[3]) {
      EXPECT_EQ(m[2], "tcp") << line;
      ++across;
    } else if (m[2] == "vader") {
      ++within;
    }
  }
  EXPECT_GE(across, 4) << a.output;  // each rank to each rank of the other node
  EXPECT_GE(within, 2) << a.output;
  EXPECT_EQ(b.output.find("node2"), std::string::npos) << b.output;
}

TEST_F(MultiNode, OnlyRankZeroWritesIntoTheRunDirectory) {
  // node2 sees the shared file system read-only: should any rank there write into the run
  // directory (or anywhere in the test's tree), its write fails and so does the job.
  write_setup("node2", "mount --bind " + dir_ + " " + dir_ + " && mount -o remount,bind,ro " +
                           dir_ + " " + dir_ + "\n");
  const auto probe = run(cluster("exec") + " node2 touch " + dir_ + "/probe");
  ASSERT_NE(probe.exit_code, 0) << "node2 could write: the audit would prove nothing";
  const auto a = run(train("node1:1,node2:2", 3, "run", kSmall + "--set checkpoint.every_steps=10"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  for (const char* f : {"/log.txt", "/metrics.csv", "/summary.yaml", "/tensorboard/train"})
    EXPECT_EQ(run("test -e " + dir_ + "/run" + f).exit_code, 0) << f;
  EXPECT_FALSE(newest("run").empty());
}

TEST_F(MultiNode, DataMissingOnOneNodeIsNamedBeforeTraining) {
  // A node-local data directory (/scratch on a real cluster) that exists on node1 only: node2
  // mounts its own empty scratch over the path.
  run("mkdir -p " + dir_ + "/scratch && cp -r " + dir_ + "/data " + dir_ + "/scratch/");
  write_setup("node2", "mount -t tmpfs scratch " + dir_ + "/scratch\n");
  const auto t0 = Clock::now();
  const auto a = run(train("node1:2,node2:2", 4, "run",
                           kSmall + "--set data.dir=" + dir_ + "/scratch/data"));
  EXPECT_NE(a.exit_code, 0) << a.output;
  EXPECT_LT(seconds_since(t0), 60.0);
  EXPECT_NE(a.output.find("rank 2 (node2): error:"), std::string::npos) << a.output;
  EXPECT_NE(a.output.find(dir_ + "/scratch/data"), std::string::npos) << a.output;
  EXPECT_NE(a.output.find("also on rank 3 on node2"), std::string::npos) << a.output;
  EXPECT_EQ(a.output.find("rank 0 (node1): error"), std::string::npos) << a.output;
  EXPECT_EQ(a.output.find("Epoch 1/"), std::string::npos) << a.output;
  std::cout << a.output;
}

// Three epochs on 2 nodes, checkpoint each epoch; slow enough to act mid-epoch.
const std::string kLong = "--set data.max_train_samples=2500 --set train.epochs=3 "
                          "--set train.collective_timeout_s=5 ";

TEST_F(MultiNode, PartitionEndsWithExitFourAndResumesExactlyWhenHealed) {
  const auto straight = run(train("node1:1,node2:1", 2, "straight", kLong));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;

  Job job(train("node1:1,node2:1", 2, "cut", kLong), dir_ + "/cut.txt");
  ASSERT_TRUE(wait_until([&] { return has_checkpoint("cut", 1); }, 120)) << job.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // into epoch 2
  ASSERT_EQ(run(cluster("link") + " node2 down").exit_code, 0);
  const auto t0 = Clock::now();
  // The margin: the stall report's grace (2 s), then mpirun's teardown, which waits until TCP
  // gives up on node2 (the cluster's tcp_retries2=5: ~13 s), plus start-up slack.
  const int rc = job.wait_exit(5 + 30);
  const double took = seconds_since(t0);
  const std::string out = job.output();
  std::cout << "partition: the job ended " << took << " s after the cut\n";
  EXPECT_EQ(rc, 4) << "(-1: still running)\n" << out;
  EXPECT_LT(took, 35.0) << out;
  EXPECT_NE(out.find("rank 0 (node1): error: stalled: the all-reduce at epoch 2/3"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("rank(s) 1 on node2 did not answer"), std::string::npos) << out;

  // Heal: what is left on node2 (its rank waits to be ended) goes, the cable goes back in.
  run(cluster("kill") + " node2");
  ASSERT_EQ(run(cluster("link") + " node2 up").exit_code, 0);
  const std::string kept = newest("cut");
  ASSERT_NE(kept.find("ckpt-0001-"), std::string::npos) << kept;
  const auto v = run(dptrain() + " verify " + kept);
  EXPECT_EQ(v.exit_code, 0) << v.output;
  const auto t1 = Clock::now();
  const auto resumed = run(train("node1:1,node2:1", 2, "cut", kLong + "--resume auto"));
  std::cout << "partition: the resumed run took " << seconds_since(t1) << " s\n";
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_identical_state(newest("straight"), newest("cut"));
}

TEST_F(MultiNode, LostNodeEndsTheJobAndKeepsTheCheckpoints) {
  Job job(train("node1:1,node2:1", 2, "run", kLong), dir_ + "/run.txt");
  ASSERT_TRUE(wait_until([&] { return has_checkpoint("run", 1); }, 120)) << job.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(run(cluster("kill") + " node2").exit_code, 0);  // every process of node2, kill -9
  const int rc = job.wait_exit(5 + 10);
  const std::string out = job.output();
  // Open MPI sees node2's connections close and ends the job itself, with its own exit code
  // and words (which name node2 or not, depending on which connection it notices first; under
  // Slurm dptrain's own report names the node: MultiNodeSlurm.LostNode...).
  EXPECT_NE(rc, -1) << "still running\n" << out;
  EXPECT_NE(rc, 0) << out;
  const auto v = run(dptrain() + " verify " + newest("run"));
  EXPECT_EQ(v.exit_code, 0) << v.output;
}

TEST_F(MultiNode, SlowNodeIsNamedFromTheOtherNode) {
  Job job(train("node1:1,node2:1", 2, "run",
                "--set data.max_train_samples=12000 --set train.log_every_steps=5"),
          dir_ + "/run.txt");
  ASSERT_TRUE(wait_until([&] { return run("test -s " + dir_ + "/run/metrics.csv").exit_code == 0; },
                         60))
      << job.output();
  const pid_t p = pid_t(std::atol(run(cluster("pids") + " node2 dptrain").output.c_str()));
  ASSERT_GT(p, 0);
  // node2's rank is stopped 70% of the time: a throttled node.
  throttle_until(p, [&] { return job.output().find("is slow") != std::string::npos; });
  EXPECT_NE(job.output().find("Warning: rank 1 (node2) is slow: for 3 logging intervals"),
            std::string::npos)
      << job.output();
  EXPECT_EQ(job.output().find("rank 0 (node1) is slow"), std::string::npos) << job.output();
}

TEST_F(MultiNode, ResumesOnFewerNodes) {
  const std::string two = "--set data.max_train_samples=1500 --set train.epochs=2 ";
  const auto straight = run(train("node1:1,node2:1", 2, "straight", two));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const auto first = run(train("node1:1,node2:1", 2, "moved", kSmall));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  run("cp -r " + dir_ + "/moved " + dir_ + "/alone");
  // Same world size on one node (node2 gone): exact.
  const auto rest = run(train("node1:2", 2, "moved", two + "--resume auto"));
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  expect_identical_state(newest("straight"), newest("moved"));
  // One rank on one node: another world size, which works and says how it differs.
  const auto one = run(train("node1:1", 1, "alone", two + "--resume auto"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("Resume: the checkpoint was written by 2 rank(s), this run has 1"),
            std::string::npos)
      << one.output;
  EXPECT_NE(newest("alone").find("ckpt-0002-"), std::string::npos);
}

// The same cluster with Slurm on it: slurmctld on node1, a slurmd on each node.
class MultiNodeSlurm : public MultiNode {
 protected:
  void SetUp() override {
    MultiNode::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (run("command -v slurmctld && command -v munged").exit_code != 0)
      GTEST_SKIP() << "slurm-wlm and munge are not installed (scripts/install-deps.sh installs them)";
    const auto r = run("timeout 60 " + cluster("slurm"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  SlurmJobs jobs() const {
    return SlurmJobs("timeout 30 " + cluster("exec") + " node1 env SLURM_CONF=" + dir_ +
                     "/cluster/slurm/slurm.conf ");
  }
  // slurm/train_cpu_multinode.sbatch as it is in the repository, submitted from node1.
  std::string submit(const std::string& options, const std::string& run_name,
                     const std::string& sets) const {
    const auto r = run(jobs().cmd("DPTRAIN=" + dptrain() + " sbatch --parsable --chdir=" + dir_ +
                                  " " + options + " " + source_dir() +
                                  "/slurm/train_cpu_multinode.sbatch " + source_dir() +
                                  "/configs/mnist_convnet.yaml --set data.dir=" + dir_ +
                                  "/data --set run_dir=" + dir_ + "/" + run_name +
                                  " --set data.max_test_samples=500 " + sets));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output.substr(0, r.output.find_first_not_of("0123456789"));
  }
  std::string job_log(const std::string& job) const {
    return read_file(dir_ + "/slurm-dptrain-cpu-nodes-" + job + ".out");
  }
};

TEST_F(MultiNodeSlurm, SbatchOnTwoNodesTrainsLikeMpirun) {
  const std::string job = submit("", "slurm", kSmall);  // the script's own 2 nodes x 2 tasks
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(jobs().wait_done(job, 240), "COMPLETED") << job_log(job);
  const std::string log = job_log(job);
  EXPECT_NE(log.find("on node[1-2] (2 nodes): 4 ranks"), std::string::npos) << log;
  EXPECT_NE(log.find("  node1: ranks 0,1, local ranks 0,1\n  node2: ranks 2,3, local ranks 0,1"),
            std::string::npos)
      << log;
  // srun + PMIx starts the same 4 ranks in the same order as mpirun: the same weights.
  const auto m = run(train("node1:2,node2:2", 4, "mpirun", kSmall));
  ASSERT_EQ(m.exit_code, 0) << m.output;
  expect_identical_state(newest("slurm"), newest("mpirun"));
}

TEST_F(MultiNodeSlurm, LostNodeIsNamedAndTheJobRequeuesAndResumes) {
  const std::string job = submit("--ntasks-per-node=1", "run", kLong);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint("run", 1); }, 180)) << job_log(job);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(run(cluster("kill") + " node2").exit_code, 0);  // slurmd, its steps, the rank
  // dptrain's rank 0 names the silent rank and its node, the step ends with 4, the script
  // requeues the job (docs/DISTRIBUTED.md: why not Slurm's own node-failure requeue).
  ASSERT_TRUE(wait_until([&] { return std::atoi(jobs().field(job, "Restarts").c_str()) >= 1; },
                         5 + 60))
      << job_log(job);
  const std::string log = job_log(job);
  EXPECT_NE(log.find("rank 0 (node1): error: stalled: the all-reduce at epoch 2/3"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("rank(s) 1 on node2 did not answer"), std::string::npos) << log;
  EXPECT_NE(log.find("dptrain lost ranks (exit 4); requeueing job " + job), std::string::npos)
      << log;
  // Slurm declares node2 down (SlurmdTimeout=10 s) and the job waits for nodes; then node2
  // comes back (its slurmd restarted, as after a reboot) and the job runs again and resumes.
  ASSERT_TRUE(wait_until(
      [&] {
        return run(jobs().cmd("sinfo -h -n node2 -o %t")).output.rfind("down", 0) == 0 &&
               jobs().field(job, "JobState") == "PENDING";
      },
      90))
      << job_log(job) << run(jobs().cmd("sinfo -N")).output;
  const auto back = run("timeout 30 " + cluster("exec") + " node2 slurmd -f " + dir_ +
                        "/cluster/slurm/slurm.conf -N node2");
  ASSERT_EQ(back.exit_code, 0) << back.output;
  ASSERT_EQ(jobs().wait_done(job, 300, 1), "COMPLETED") << job_log(job);
  const std::string after = job_log(job);
  EXPECT_NE(after.find("(restart 1)"), std::string::npos) << after;
  EXPECT_NE(after.find("Resume: from " + dir_ + "/run/checkpoints/ckpt-0001-"), std::string::npos)
      << after;
  EXPECT_NE(after.find("Epoch 3/3"), std::string::npos) << after;
  EXPECT_NE(newest("run").find("ckpt-0003-"), std::string::npos);
}

}  // namespace
}  // namespace dpt::testing
