// MpiCommunicator: host-buffer collectives on MPI_COMM_WORLD, all non-blocking and polled.
#pragma once
#include <mpi.h>

#include <set>

#include "comm/communicator.h"

namespace dpt {

// Wraps an MPI call: on failure throws with the call, file:line and MPI's error string.
#define DPT_MPI_CHECK(call)                                                                \
  do {                                                                                     \
    const int dpt_rc_ = (call);                                                            \
    if (dpt_rc_ != MPI_SUCCESS) {                                                          \
      char dpt_msg_[MPI_MAX_ERROR_STRING];                                                 \
      int dpt_len_ = 0;                                                                    \
      MPI_Error_string(dpt_rc_, dpt_msg_, &dpt_len_);                                      \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": " << dpt_msg_); \
    }                                                                                      \
  } while (0)

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(int* argc, char*** argv);
  ~MpiCommunicator() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }
  std::unique_ptr<Work> allreduce_sum(float* buf, size_t n) override;
  void allreduce_sum_f64(double* buf, size_t n) override;
  void broadcast(void* buf, size_t bytes, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

  // Polls a started collective until it completes; past the collective timeout, runs the
  // stall protocol (Note [stall report] in the .cpp), which ends the job.
  void wait(MPI_Request* req, const char* what);

 private:
  void exchange_hosts();
  void answer_pings();
  [[noreturn]] void report_stall(const char* what, double waited);

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MPI_Comm side_ = MPI_COMM_NULL;  // status pings between waiting ranks, never a collective
  MPI_Request ping_req_ = MPI_REQUEST_NULL;
  int64_t ping_in_[3] = {0, 0, 0};
  int64_t seq_ = 0;  // collectives this rank has started
};

}  // namespace dpt
