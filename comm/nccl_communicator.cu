// NcclCommunicator: NCCL init from an MPI-broadcast unique id, stream-ordered async all-reduce,
// asynchronous-error and timeout watchdog, abort instead of a hanging destroy after a failure.
#include <nccl.h>

#include <cstdlib>
#include <exception>
#include <vector>

#include "comm/agree.h"
#include "comm/nccl_communicator.h"
#include "core/exit_codes.h"
#include "models/kernels/cuda/cuda_context.h"

#define DPT_NCCL_CHECK(call)                                                 \
  do {                                                                       \
    const ncclResult_t dpt_n_ = (call);                                      \
    if (dpt_n_ != ncclSuccess)                                               \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": " \
                     << ncclGetErrorString(dpt_n_));                         \
  } while (0)

namespace dpt {

namespace {

// Events are made once and reused (creating two per bucket per step costs more than the wait).
class EventPool {
 public:
  ~EventPool() {
    for (auto e : free_) cudaEventDestroy(e);
  }
  cudaEvent_t take() {
    if (free_.empty()) {
      cudaEvent_t e;
      DPT_CUDA_CHECK(cudaEventCreate(&e));  // with timing: the all-reduce time is measured
      return e;
    }
    const cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  void give(cudaEvent_t e) { free_.push_back(e); }

 private:
  std::vector<cudaEvent_t> free_;
};

class NcclWork : public Work {
 public:
  NcclWork(EventPool& pool, cudaEvent_t done) : pool_(pool), done_(done) {}
  ~NcclWork() override {
    pool_.give(done_);
    if (reached_) pool_.give(reached_);
  }
  // The compute stream waits for the all-reduce on the GPU; the host goes on.
  void wait() override {
    reached_ = pool_.take();
    DPT_CUDA_CHECK(cudaEventRecord(reached_, cuda::stream()));
    DPT_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), done_, 0));
  }
  bool test() override { return cudaEventQuery(done_) == cudaSuccess; }
  // How long the compute stream stood still for this all-reduce, once both events happened.
  double device_wait_seconds() override {
    float ms = 0;
    if (!reached_ || cudaEventQuery(done_) != cudaSuccess ||
        cudaEventQuery(reached_) != cudaSuccess ||
        cudaEventElapsedTime(&ms, reached_, done_) != cudaSuccess)
      return -1;
    return ms > 0 ? ms / 1000.0 : 0.0;
  }

 private:
  EventPool& pool_;
  cudaEvent_t done_, reached_ = nullptr;
};

class NcclCommunicator : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& host) : host_(host) {
    hosts_from(host);
    ncclUniqueId id;
    if (host_.rank() == 0) DPT_NCCL_CHECK(ncclGetUniqueId(&id));
    host_.broadcast(&id, sizeof id, 0);
    DPT_NCCL_CHECK(ncclCommInitRank(&comm_, host_.size(), id, host_.rank()));
    DPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cuda::set_watchdog([this](double waited) { watch(waited); });
  }
  ~NcclCommunicator() override {
    cuda::set_watchdog(nullptr);
    // After a failure (or while an error unwinds), NCCL's kernels may wait for a peer that is
    // gone: ncclCommDestroy would flush them and hang, ncclCommAbort does not.
    if (failed_ || std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm_);
    } else {
      ncclCommDestroy(comm_);
    }
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_rank() const override { return host_.local_rank(); }
  int local_size() const override { return host_.local_size(); }
  std::string backend() const override { return "nccl"; }

  // Note [nccl ordering]: see nccl_communicator.h.
  std::unique_ptr<Work> allreduce_sum(float* buf, size_t n) override {
    const cudaEvent_t ready = events_.take(), done = events_.take();
    DPT_CUDA_CHECK(cudaEventRecord(ready, cuda::stream()));
    DPT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    events_.give(ready);  // the wait captured it; re-recording it later is safe
    DPT_NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm_, stream_));
    DPT_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<NcclWork>(events_, done);
  }
  void allreduce_sum_f64(double* buf, size_t n) override { host_.allreduce_sum_f64(buf, n); }
  void broadcast(void* buf, size_t bytes, int root) override { host_.broadcast(buf, bytes, root); }
  void barrier() override { host_.barrier(); }
  [[noreturn]] void abort(int code) override {
    failed_ = true;
    ncclCommAbort(comm_);
    host_.abort(code);
    std::abort();  // not reached; nvcc's host pass does not see host_.abort as noreturn
  }

 private:
  // Runs while the host polls the GPU (Note [polled waits]): a failed peer or network shows
  // as NCCL's asynchronous error; a peer that stopped shows only as time. Either ends the job
  // from here, as the MPI stall report does: an exception would unwind through destructors
  // that synchronise the device (frees, ~NcclCommunicator) and, within a node, wait for a peer
  // that will never abort.
  void watch(double waited) {
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state != ncclSuccess &&
        state != ncclInProgress)
      end_job(kExitError, "NCCL failed while rank " + std::to_string(rank()) +
                              " waited for the GPU: " + ncclGetErrorString(state) +
                              " (a peer rank died or the network failed)");
    const double limit = host_.collective_timeout();
    if (limit > 0 && waited > limit)
      end_job(kExitStalled,
              "stalled: " + rank_name(rank()) + " waited " + std::to_string(int(waited)) +
                  " s for the GPU at " + host_.location() +
                  ", longer than train.collective_timeout_s=" + std::to_string(int(limit)) +
                  ": a peer rank stopped or an NCCL collective cannot complete. Ending the job "
                  "(exit code " +
                  std::to_string(kExitStalled) + ")");
  }
  [[noreturn]] void end_job(int code, const std::string& message) {
    report_error(rank_name(rank()), message);
    abort(code);  // ncclCommAbort, then MPI_Abort (one rank: exit)
  }

  Communicator& host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  EventPool events_;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host) {
  return std::make_unique<NcclCommunicator>(host);
}

}  // namespace dpt
