// MpiCommunicator: MPI initialisation, local rank from a shared-memory split, polled collectives
// with a deadline and a report of the ranks that did not arrive.
#include "comm/mpi_communicator.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "comm/agree.h"
#include "comm/local_communicator.h"
#include "core/error.h"
#include "core/exit_codes.h"

namespace dpt {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr int kPingTag = 7301, kPongTag = 7302;

class MpiWork : public Work {
 public:
  explicit MpiWork(MpiCommunicator* comm) : comm_(comm) {}
  MPI_Request* request() { return &req_; }
  void wait() override { comm_->wait(&req_, "all-reduce"); }
  bool test() override {
    int done = 1;
    if (req_ != MPI_REQUEST_NULL) DPT_MPI_CHECK(MPI_Test(&req_, &done, MPI_STATUS_IGNORE));
    return done != 0;
  }

 private:
  MpiCommunicator* comm_;
  MPI_Request req_ = MPI_REQUEST_NULL;
};

bool launched_by_mpi_or_slurm() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                        "MPI_LOCALNRANKS", "SLURM_STEP_ID"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

MpiCommunicator::MpiCommunicator(int* argc, char*** argv) {
  int provided = 0;
  DPT_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  DPT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  DPT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  DPT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &side_));
  MPI_Comm_set_errhandler(side_, MPI_ERRORS_RETURN);
  DPT_MPI_CHECK(MPI_Irecv(ping_in_, 3, MPI_INT64_T, MPI_ANY_SOURCE, kPingTag, side_, &ping_req_));
  // Local rank: ranks sharing this node's memory, numbered in world order. Should the MPI
  // library not support the split, the launchers' own variables say the same.
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    DPT_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
    DPT_MPI_CHECK(MPI_Comm_size(node, &local_size_));
    MPI_Comm_free(&node);
  } else {
    auto env_int = [](std::initializer_list<const char*> names, int fallback) {
      for (const char* n : names)
        if (const char* v = std::getenv(n)) return std::atoi(v);
      return fallback;
    };
    local_rank_ = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}, 0);
    local_size_ =
        env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}, 1);
  }
  exchange_hosts();
}

// Note [hosts]: one blocking all-gather at start-up, before any deadline is set.
void MpiCommunicator::exchange_hosts() {
  struct Entry {
    char host[256];
    int32_t local_rank;
  };
  Entry mine{};
  const std::string h = this_host();
  h.copy(mine.host, sizeof mine.host - 1);
  mine.local_rank = local_rank_;
  std::vector<Entry> all(size_t(size_), Entry{});
  DPT_MPI_CHECK(MPI_Allgather(&mine, int(sizeof mine), MPI_BYTE, all.data(), int(sizeof mine),
                              MPI_BYTE, MPI_COMM_WORLD));
  hosts_.clear();
  local_ranks_.clear();
  for (const Entry& e : all) {
    hosts_.emplace_back(e.host, strnlen(e.host, sizeof e.host));
    local_ranks_.push_back(e.local_rank);
  }
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (ping_req_ != MPI_REQUEST_NULL) {
    MPI_Cancel(&ping_req_);
    MPI_Wait(&ping_req_, MPI_STATUS_IGNORE);
  }
  if (side_ != MPI_COMM_NULL) MPI_Comm_free(&side_);
  MPI_Finalize();
}

// Replies to status pings of ranks that have waited past the deadline: "I am here, in my
// collective number seq_" (a rank answers only while it waits in a collective).
void MpiCommunicator::answer_pings() {
  while (true) {
    int arrived = 0;
    MPI_Status st;
    if (MPI_Test(&ping_req_, &arrived, &st) != MPI_SUCCESS || !arrived) return;
    const int64_t reply[3] = {ping_in_[0], seq_, rank_};              // episode, my position, me
    MPI_Send(reply, 3, MPI_INT64_T, st.MPI_SOURCE, kPongTag, side_);  // tiny: sent eagerly
    MPI_Irecv(ping_in_, 3, MPI_INT64_T, MPI_ANY_SOURCE, kPingTag, side_, &ping_req_);
  }
}

void MpiCommunicator::wait(MPI_Request* req, const char* what) {
  const auto start = Clock::now();
  int64_t polls = 0;
  while (true) {
    int done = 0;
    DPT_MPI_CHECK(MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (done) return;
    // Spin first (collectives between local ranks finish in microseconds), then yield the
    // core (to the prefetch thread), then sleep a little: a long wait should not burn a core.
    if ((++polls & 63) != 0) continue;
    const double waited = since(start);
    if (waited > 0.05) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else if (waited > 0.002) {
      sched_yield();
    }
    answer_pings();
    if (timeout_s_ > 0 && waited > timeout_s_) report_stall(what, waited);
  }
}

// Note [stall report]: the collective itself cannot say who is missing, so a rank past the
// deadline asks every other rank over a separate communicator; ranks that wait in a collective
// answer at once (answer_pings), a rank that is stopped, hung in computation or dead does not.
// After a grace period the lowest answering rank prints one line naming the silent ranks and
// ends the job with kExitStalled; the others wait to be ended (and end it themselves if the
// reporter has gone too). Should the collective complete during the grace period (a slow
// rank, not a stuck one), training simply goes on.
void MpiCommunicator::report_stall(const char* what, double waited) {
  static int64_t episode = 0;
  ++episode;
  const double grace = std::min(30.0, std::max(2.0, timeout_s_ / 5));
  const int64_t ping[3] = {episode, seq_, rank_};
  std::vector<MPI_Request> sends;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    sends.emplace_back();
    MPI_Isend(ping, 3, MPI_INT64_T, r, kPingTag, side_, &sends.back());
  }
  std::vector<int64_t> position(size_t(size_), -1);  // -1: no answer
  position[size_t(rank_)] = seq_;
  const auto t0 = Clock::now();
  while (since(t0) < grace) {
    answer_pings();
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kPongTag, side_, &flag, &st);
    if (flag) {
      int64_t pong[3];
      MPI_Recv(pong, 3, MPI_INT64_T, st.MPI_SOURCE, kPongTag, side_, MPI_STATUS_IGNORE);
      if (pong[0] == episode) position[size_t(pong[2])] = pong[1];
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& s : sends) MPI_Request_free(&s);
  std::vector<int> silent_r, behind_r, waiting_r;
  int reporter = rank_;
  for (int r = 0; r < size_; ++r) {
    const int64_t p = position[size_t(r)];
    if (p < 0)
      silent_r.push_back(r);
    else if (p < seq_)
      behind_r.push_back(r);
    else {
      waiting_r.push_back(r);
      reporter = std::min(reporter, r);
    }
  }
  // "2,3 on node2" once the job spans hosts: a partition shows as all ranks of one node.
  const std::string silent = silent_r.empty() ? "" : rank_list(silent_r);
  const std::string behind = behind_r.empty() ? "" : rank_list(behind_r);
  const std::string waiting = rank_list(waiting_r);
  if (reporter != rank_) {
    // The reporter ends the job; should it be gone too, end it from here.
    std::this_thread::sleep_for(std::chrono::duration<double>(2 * grace));
  }
  std::string msg =
      "stalled: the " + std::string(what) + " at " + location() + " did not " +
      "complete within train.collective_timeout_s=" + std::to_string(int(timeout_s_)) +
      " s (waited " + std::to_string(int(waited + grace)) + " s)";
  if (!silent.empty())
    msg += "; rank(s) " + silent + " did not answer: stopped, hung in computation, or dead";
  if (!behind.empty()) msg += "; rank(s) " + behind + " answered from an earlier collective";
  if (silent.empty() && behind.empty())
    msg += "; every rank answered from a collective: they are in different ones (a bug in dptrain)";
  msg += "; rank(s) " + waiting + " were waiting. Ending the job (exit code 4)";
  report_error(rank_name(rank_), msg);
  abort(kExitStalled);
  std::abort();  // not reached: abort() ends the job
}

std::unique_ptr<Work> MpiCommunicator::allreduce_sum(float* buf, size_t n) {
  auto w = std::make_unique<MpiWork>(this);
  ++seq_;
  DPT_MPI_CHECK(
      MPI_Iallreduce(MPI_IN_PLACE, buf, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, w->request()));
  return w;
}

void MpiCommunicator::allreduce_sum_f64(double* buf, size_t n) {
  MPI_Request req;
  ++seq_;
  DPT_MPI_CHECK(
      MPI_Iallreduce(MPI_IN_PLACE, buf, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req));
  wait(&req, "all-reduce of metrics and flags");
}

void MpiCommunicator::broadcast(void* buf, size_t bytes, int root) {
  MPI_Request req;
  ++seq_;
  DPT_MPI_CHECK(MPI_Ibcast(buf, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD, &req));
  wait(&req, "broadcast");
}

void MpiCommunicator::barrier() {
  MPI_Request req;
  ++seq_;
  DPT_MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &req));
  wait(&req, "barrier");
}

void MpiCommunicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

std::unique_ptr<Communicator> make_communicator(int* argc, char*** argv) {
  if (!launched_by_mpi_or_slurm()) return std::make_unique<LocalCommunicator>();
  auto comm = std::make_unique<MpiCommunicator>(argc, argv);
  // srun without a working PMI plugin starts N singleton MPI processes, each believing it is
  // alone: they would train N unrelated models. Refuse that.
  const char* step_tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (step_tasks && !std::getenv("OMPI_COMM_WORLD_SIZE") && std::atoi(step_tasks) != comm->size()) {
    std::fprintf(stderr,
                 "dptrain: error: srun started %s tasks but MPI sees %d rank(s): launch with "
                 "srun --mpi=pmix (see slurm/README.md)\n",
                 step_tasks, comm->size());
    comm.reset();
    std::exit(1);
  }
  return comm;
}

}  // namespace dpt
