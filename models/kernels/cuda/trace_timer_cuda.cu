// The GPU's DeviceTimer (Note [device spans] in core/trace.h): CUDA events on the compute
// stream time each span of device work, and NVTX ranges name it for nsys.
#include <nvtx3/nvToolsExt.h>

#include <vector>

#include "core/trace.h"
#include "models/kernels/cuda/cuda_context.h"
#include "models/kernels/cuda/trace_timer_cuda.h"

namespace dpt::cuda {
namespace {

class CudaTimer : public trace::DeviceTimer {
 public:
  int begin(const char* name) override {
    if (marks_.empty()) {
      // The window's reference: an event the host waits for, so that its time on the host's
      // clock is known to within the wait's wake-up (microseconds).
      if (!ref_) DPT_CUDA_CHECK(cudaEventCreate(&ref_));
      DPT_CUDA_CHECK(cudaEventRecord(ref_, stream()));
      DPT_CUDA_CHECK(cudaEventSynchronize(ref_));
      ref_us_ = trace::now_us();
    }
    marks_.push_back({next(), -1});
    nvtxRangePushA(name);  // after next(): a failed record leaves no range open
    return int(marks_.size()) - 1;
  }
  void end(int mark) noexcept override {
    nvtxRangePop();
    if (size_t(mark) >= marks_.size()) return;  // resolved while open: nothing to close
    try {
      marks_[size_t(mark)].second = next();
    } catch (...) {
      if (!failed_) failed_ = std::current_exception();
    }
  }
  std::vector<std::pair<int64_t, int64_t>> resolve() override {
    if (failed_) {
      std::exception_ptr e = failed_;
      failed_ = nullptr;
      marks_.clear();
      used_ = 0;
      std::rethrow_exception(e);
    }
    DPT_CUDA_CHECK(cudaStreamSynchronize(stream()));
    std::vector<std::pair<int64_t, int64_t>> out;
    out.reserve(marks_.size());
    for (const auto& [b, e] : marks_) {
      if (e < 0) {
        out.emplace_back(at(b), at(b));  // still open: a span of no length
        continue;
      }
      // The start from the window's reference, the duration from the span's own two events:
      // a float's milliseconds lose microseconds far from the reference, not close to it.
      float ms = 0;
      DPT_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[size_t(b)], pool_[size_t(e)]));
      const int64_t start = at(b);
      out.emplace_back(start, start + int64_t(double(ms) * 1000.0));
    }
    marks_.clear();
    used_ = 0;  // the events are reused by the next window
    return out;
  }

 private:
  // The next event of the pool, recorded on the compute stream now; its index.
  int next() {
    if (used_ == pool_.size()) {
      cudaEvent_t e;
      DPT_CUDA_CHECK(cudaEventCreate(&e));
      pool_.push_back(e);
    }
    DPT_CUDA_CHECK(cudaEventRecord(pool_[used_], stream()));
    return int(used_++);
  }
  int64_t at(int event) const {
    float ms = 0;
    DPT_CUDA_CHECK(cudaEventElapsedTime(&ms, ref_, pool_[size_t(event)]));
    return ref_us_ + int64_t(double(ms) * 1000.0);
  }
  std::vector<cudaEvent_t> pool_;
  size_t used_ = 0;
  std::vector<std::pair<int, int>> marks_;  // events of [begin, end) per mark
  cudaEvent_t ref_ = nullptr;
  int64_t ref_us_ = 0;
  std::exception_ptr failed_;
};

}  // namespace

void install_trace_timer() {
  static CudaTimer timer;  // lives to the process's end, as the stream does
  trace::set_device_timer(&timer);
}

}  // namespace dpt::cuda
