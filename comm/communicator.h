// Communicator: the collective operations training needs, with async work handles (c10d-like).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dpt {

// A started collective; wait() blocks until the buffer holds the result.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  // Lets the backend progress without blocking (MPI progresses only inside MPI calls).
  virtual bool test() { return false; }
  // Device collectives (NCCL) wait on the GPU, not in wait(): the time the compute stream
  // stood still, measured with CUDA events once known; -1 where the host's wait is the time.
  virtual double device_wait_seconds() { return -1; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;  // ranks on this node
  virtual std::string backend() const = 0;
  // In-place sum across ranks of a host (or, for device communicators, device) buffer.
  virtual std::unique_ptr<Work> allreduce_sum(float* buf, size_t n) = 0;
  virtual void allreduce_sum_f64(double* buf, size_t n) = 0;  // metrics
  virtual void broadcast(void* buf, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Stops every rank of the job with a non-zero exit; never returns.
  [[noreturn]] virtual void abort(int code) = 0;

  // Note [collective timeout]: a rank that waits in any collective longer than this finds out
  // which ranks have not arrived, and the job ends with kExitStalled and one report naming
  // them (comm/mpi_communicator.cpp). 0 waits forever.
  virtual void set_collective_timeout(double seconds) { timeout_s_ = seconds; }
  double collective_timeout() const { return timeout_s_; }
  // Where training is ("epoch 3, step 120"), for that report.
  void set_location(std::function<std::string()> where) { where_ = std::move(where); }
  std::string location() const { return where_ ? where_() : std::string("set-up"); }

  // Note [hosts]: the host name of every rank's node and its local rank there, exchanged once at
  // start-up, so that reports across nodes name the node as well as the rank. On one host the
  // host is left out of messages: there, it would only be noise.
  const std::string& host_of(int rank) const { return hosts_.at(size_t(rank)); }
  int local_rank_of(int rank) const { return local_ranks_.at(size_t(rank)); }
  bool spans_hosts() const;
  // "rank 2", or "rank 2 (node2)" when the job spans several hosts.
  std::string rank_name(int rank) const;
  // "1,3", or "2,3 on node2 and 5 on node3" when the job spans several hosts.
  std::string rank_list(const std::vector<int>& ranks) const;
  // The node -> ranks table rank 0 prints at start: one line per host, in rank order.
  std::string node_table() const;

 protected:
  double timeout_s_ = 0;
  std::vector<std::string> hosts_;  // by rank; filled by the constructor of each backend
  std::vector<int> local_ranks_;
  void hosts_from(const Communicator& other) {
    hosts_ = other.hosts_;
    local_ranks_ = other.local_ranks_;
  }
  std::function<std::string()> where_;
};

// This machine's host name (gethostname), "unknown-host" should that fail.
std::string this_host();

// MPI when a launcher (mpirun, srun with PMI/PMIx) started us, the one-rank stub otherwise.
std::unique_ptr<Communicator> make_communicator(int* argc, char*** argv);

}  // namespace dpt
