// GPU selection and the per-process CUDA stream and library handles.
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "core/device_memory.h"
#include "models/kernels/cuda/cuda_context.h"
#include "models/kernels/cuda/trace_timer_cuda.h"
#include "models/kernels/precision_support.h"

namespace dpt {

int gpu_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

bool cuda_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

namespace {
// CUDA encodes versions as 1000*major + 10*minor.
std::string cuda_version_str(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
}  // namespace

std::string gpu_library_versions() {
  int runtime = 0, driver = 0, devices = 0;
  cudaRuntimeGetVersion(&runtime);
  const bool has_driver = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  const size_t cudnn = cudnnGetVersion();
  int nccl = 0;
  ncclGetVersion(&nccl);
  std::string out = "CUDA runtime " + cuda_version_str(runtime) + ", driver " +
                    (has_driver ? cuda_version_str(driver) : std::string("none")) + ", " +
                    std::to_string(devices) + " GPU(s) visible\n";
  out += "cuDNN " + std::to_string(cudnn / 10000) + "." + std::to_string((cudnn % 10000) / 100) +
         "." + std::to_string(cudnn % 100) + ", NCCL " + std::to_string(nccl / 10000) + "." +
         std::to_string((nccl % 10000) / 100) + "." + std::to_string(nccl % 100) + "\n";
  return out;
}

// Note [gpu per rank]: when a launcher shows each rank one GPU (srun --gpus-per-task=1, or a
// CUDA_VISIBLE_DEVICES per rank), that one is the rank's; when the node's GPUs are all
// visible, a rank takes the GPU of its local rank, and needs one per local rank.
void select_gpu(int local_rank, int local_size) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  DPT_CHECK(e == cudaSuccess && n > 0,
            "train.backend is cuda but no usable GPU was found ("
                << (e == cudaSuccess ? "no devices" : cudaGetErrorString(e))
                << "); use backend: cpu, or run on a GPU node");
  if (n == 1) {
    DPT_CUDA_CHECK(cudaSetDevice(0));
  } else {
    DPT_CHECK(local_size <= n, local_size << " ranks run on this node but it has only " << n
                                          << " GPU(s); start at most one rank per GPU");
    DPT_CUDA_CHECK(cudaSetDevice(local_rank));
  }
  cuda::install_trace_timer();  // train.trace's spans of device work on CUDA events
}

namespace {
int compute_capability_major(int dev) {
  int major = 0;
  DPT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return major;
}
}  // namespace

void check_precision_cuda(Precision p) {
  DPT_ASSERT(p != Precision::kAuto);  // resolved first (resolve_precision)
  if (p == Precision::kFp32) return;
  int dev = 0;
  DPT_CUDA_CHECK(cudaGetDevice(&dev));
  const int major = compute_capability_major(dev);
  DPT_CHECK(major >= 8,
            "train.precision "
                << precision_name(p)
                << " needs an Ampere or newer GPU "
                   "(compute capability 8.0); GPU "
                << dev << " has " << major
                << ".x; use precision: "
                   "auto (bf16 where the hardware has it, fp32 elsewhere) or precision: fp32");
}

PrecisionChoice auto_precision_cuda() {
  int dev = 0;
  DPT_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  DPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  const std::string gpu = "GPU " + std::to_string(dev) + " (" + prop.name +
                          ", compute capability " + std::to_string(prop.major) + "." +
                          std::to_string(prop.minor) + ")";
  if (prop.major >= 8) return {Precision::kBf16, gpu + " computes bf16 natively"};
  return {Precision::kFp32, gpu + " has no native bf16 (Ampere or newer has)"};
}

int current_gpu() {
  int d = 0;
  DPT_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

std::string current_gpu_uuid() {
  cudaDeviceProp prop{};
  DPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, current_gpu()));
  char hex[33] = {0};
  for (int i = 0; i < 16; ++i)
    std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(prop.uuid.bytes[i]));
  return hex;
}

float* device_alloc(size_t bytes) {
  void* p = nullptr;
  DPT_CUDA_CHECK(cudaMalloc(&p, bytes));
  DPT_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda::stream()));
  return static_cast<float*>(p);
}

void device_free(void* p) {
  if (p) cudaFree(p);
}

namespace {

// Note [pinned staging]: cudaMemcpyAsync with pageable host memory returns only once the copy
// is done, so the host would block inside CUDA behind whatever the stream waits for (an NCCL
// all-reduce of a stopped peer) and never reach the polled wait that checks NCCL's errors and
// the collective timeout (Note [polled waits]). Host<->device copies therefore go through one
// page-locked buffer: enqueued, then waited for by polling, then copied on the host.
class Staging {
 public:
  void* get(size_t bytes) {
    if (bytes > bytes_) {
      if (p_) cudaFreeHost(p_);
      p_ = nullptr;
      bytes_ = 0;
      DPT_CUDA_CHECK(cudaMallocHost(&p_, bytes));
      bytes_ = bytes;
    }
    return p_;
  }
  std::mutex& mutex() { return mutex_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
  std::mutex mutex_;
};

Staging& staging() {
  static Staging s;
  return s;
}

}  // namespace

void copy_memory(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes) {
  if (!dst_device && !src_device) {
    if (dst != src) std::memcpy(dst, src, bytes);
    return;
  }
  if (bytes == 0) return;
  if (dst_device && src_device) {
    DPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda::stream()));
    cuda::synchronize();
    return;
  }
  std::lock_guard<std::mutex> lock(staging().mutex());
  void* pinned = staging().get(bytes);
  if (dst_device) {
    std::memcpy(pinned, src, bytes);
    DPT_CUDA_CHECK(cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, cuda::stream()));
    cuda::synchronize();  // the staging buffer is free again when the copy is done
  } else {
    DPT_CUDA_CHECK(cudaMemcpyAsync(pinned, src, bytes, cudaMemcpyDeviceToHost, cuda::stream()));
    cuda::synchronize();
    std::memcpy(dst, pinned, bytes);
  }
}

namespace {
// Sets *flag when any element is NaN or infinite (x * 0 is 0 exactly for finite x).
__global__ void non_finite_kernel(const float* p, size_t n, int* flag) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(blockDim.x) * gridDim.x)
    if (p[i] * 0.0f != 0.0f) *flag = 1;
}
}  // namespace

bool all_finite_on_device(const float* p, size_t n) {
  // One int of device memory and its page-locked host twin (Note [pinned staging]).
  static int* flag = nullptr;
  static int* host = nullptr;
  if (!flag) DPT_CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
  if (!host) DPT_CUDA_CHECK(cudaMallocHost(&host, sizeof(int)));
  DPT_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), cuda::stream()));
  if (n > 0) {
    non_finite_kernel<<<cuda::blocks_for(int64_t(n)), 256, 0, cuda::stream()>>>(p, n, flag);
    DPT_CUDA_LAUNCH_CHECK();
  }
  DPT_CUDA_CHECK(cudaMemcpyAsync(host, flag, sizeof(int), cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
  return *host == 0;
}

void zero_memory(void* p, bool device, size_t bytes) {
  if (!device) {
    std::memset(p, 0, bytes);
    return;
  }
  DPT_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda::stream()));
}

namespace cuda {

namespace {
struct Context {
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
};
Context& ctx() {
  static Context c = [] {
    Context x;
    DPT_CUDA_CHECK(cudaStreamCreateWithFlags(&x.stream, cudaStreamNonBlocking));
    DPT_CUDNN_CHECK(cudnnCreate(&x.cudnn));
    DPT_CUDNN_CHECK(cudnnSetStream(x.cudnn, x.stream));
    DPT_CUBLAS_CHECK(cublasCreate(&x.cublas));
    DPT_CUBLAS_CHECK(cublasSetStream(x.cublas, x.stream));
    return x;
  }();
  return c;
}
}  // namespace

cudaStream_t stream() { return ctx().stream; }
cudnnHandle_t cudnn() { return ctx().cudnn; }
cublasHandle_t cublas() { return ctx().cublas; }
namespace {
std::function<void(double)>& watchdog() {
  static std::function<void(double)> w;
  return w;
}
}  // namespace

void set_watchdog(std::function<void(double)> w) { watchdog() = std::move(w); }

// Note [polled waits]: the host never blocks inside CUDA. It records an event and polls it;
// between polls the watchdog (NCCL's asynchronous error, the collective timeout) may throw,
// so a dead peer or a failed network ends the job instead of hanging it in
// cudaStreamSynchronize forever.
void synchronize() {
  static cudaEvent_t done = nullptr;
  if (!done) DPT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  DPT_CUDA_CHECK(cudaEventRecord(done, stream()));
  const auto start = std::chrono::steady_clock::now();
  for (int64_t polls = 0;; ++polls) {
    const cudaError_t e = cudaEventQuery(done);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) DPT_CUDA_CHECK(e);
    if (polls < 1000) continue;  // most waits end within microseconds
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (watchdog()) watchdog()(waited);
    std::this_thread::sleep_for(std::chrono::microseconds(waited > 0.01 ? 200 : 10));
  }
}

}  // namespace cuda
}  // namespace dpt
