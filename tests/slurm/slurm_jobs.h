// SlurmJobs: a test's view of its Slurm cluster's jobs (fields, waiting for an end, requeues).
#pragma once
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "test_helpers.h"

namespace dpt::testing {

class SlurmJobs {
 public:
  // prefix: what runs a Slurm command against the cluster ("SLURM_CONF=... " or an exec on
  // a node of it); the command follows it.
  explicit SlurmJobs(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string cmd(const std::string& c) const { return prefix_ + c; }
  std::string field(const std::string& job, const std::string& name) const {
    const std::string out = run(cmd("scontrol show job " + job)).output;
    const auto p = out.find(name + "=");
    if (p == std::string::npos) return "";
    const auto e = out.find_first_of(" \n", p);
    return out.substr(p + name.size() + 1, e - p - name.size() - 1);
  }
  // Waits for a final state reached after at least `restarts` requeues. A requeued job is
  // released as soon as its previous run's step daemons are gone, instead of after Slurm's
  // begin-time delay of about two minutes (starting earlier races the old step's cleanup).
  std::string wait_done(const std::string& job, int seconds, int restarts = 0) const {
    for (int i = 0; i < seconds * 2; ++i) {
      const std::string st = field(job, "JobState");
      const int restarted = std::atoi(field(job, "Restarts").c_str());
      const bool final_state =
          st == "COMPLETED" || st == "FAILED" || st == "CANCELLED" || st == "TIMEOUT";
      if (final_state && (restarted >= restarts || st != "COMPLETED")) return st;
      if (st == "PENDING" && restarted > 0 &&
          run("pgrep -f 'slurmstepd: \\[" + job + "[].]'").exit_code != 0)
        run(cmd("scontrol update JobId=" + job + " StartTime=now"));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return "still " + field(job, "JobState");
  }

 private:
  std::string prefix_;
};

}  // namespace dpt::testing
