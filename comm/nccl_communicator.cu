// NcclCommunicator: NCCL init from an MPI-broadcast unique id, stream-ordered async all-reduce.
#include <nccl.h>

#include <cstdlib>

#include "comm/nccl_communicator.h"
#include "models/kernels/cuda/cuda_context.h"

#define DPT_NCCL_CHECK(call)                                                                 \
  do {                                                                                       \
    const ncclResult_t dpt_n_ = (call);                                                      \
    if (dpt_n_ != ncclSuccess)                                                               \
      DPT_FAIL(#call << " failed at " << __FILE__ << ":" << __LINE__ << ": "                 \
                     << ncclGetErrorString(dpt_n_));                                         \
  } while (0)

namespace dpt {

namespace {

class NcclWork : public Work {
 public:
  explicit NcclWork(cudaEvent_t done) : done_(done) {}
  ~NcclWork() override { cudaEventDestroy(done_); }
  void wait() override { DPT_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), done_, 0)); }
  bool test() override { return cudaEventQuery(done_) == cudaSuccess; }

 private:
  cudaEvent_t done_;
};

class NcclCommunicator : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& host) : host_(host) {
    ncclUniqueId id;
    if (host_.rank() == 0) DPT_NCCL_CHECK(ncclGetUniqueId(&id));
    host_.broadcast(&id, sizeof id, 0);
    DPT_NCCL_CHECK(ncclCommInitRank(&comm_, host_.size(), id, host_.rank()));
    DPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_rank() const override { return host_.local_rank(); }
  int local_size() const override { return host_.local_size(); }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> allreduce_sum(float* buf, size_t n) override {
    cudaEvent_t ready, done;
    DPT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    DPT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    DPT_CUDA_CHECK(cudaEventRecord(ready, cuda::stream()));
    DPT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    cudaEventDestroy(ready);  // destruction is deferred until the wait has happened
    DPT_NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm_, stream_));
    DPT_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_unique<NcclWork>(done);
  }
  void allreduce_sum_f64(double* buf, size_t n) override { host_.allreduce_sum_f64(buf, n); }
  void broadcast(void* buf, size_t bytes, int root) override { host_.broadcast(buf, bytes, root); }
  void barrier() override { host_.barrier(); }
  [[noreturn]] void abort(int code) override {
    host_.abort(code);
    std::abort();  // not reached; nvcc's host pass does not see host_.abort as noreturn
  }

 private:
  Communicator& host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host) {
  return std::make_unique<NcclCommunicator>(host);
}

}  // namespace dpt
