// RAII cuDNN descriptors and the activation helper mirroring ActivationCpu.
#pragma once
#include <memory>

#include "core/tensor.h"
#include "models/kernels/cuda/cuda_context.h"
#include "models/layers/act.h"

namespace dpt::cuda {

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { DPT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  // NHWC activations (dptrain's layout), logical N, C, H, W.
  void nhwc(int64_t n, int64_t h, int64_t w, int64_t c, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    DPT_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NHWC, type, int(n), int(c), int(h), int(w)));
  }
  operator cudnnTensorDescriptor_t() const { return d; }
};

// A device buffer of bfloat16 values (Note [precision]): FP32 data converted in and out.
class Bf16Buffer {
 public:
  void reserve(int64_t n) { storage_ = Tensor({(n + 1) / 2}, Device::kCuda); }  // 2 per float
  void* data() { return storage_.data(); }
  // Converts n floats into the buffer; returns it.
  const void* from(const float* src, int64_t n);
  // Converts the buffer's first n values back to floats at dst.
  void to(float* dst, int64_t n);

 private:
  Tensor storage_;
};

// relu / sigmoid / tanh through cudnnActivation*, softmax over the last axis through
// cudnnSoftmax*; backward from the output y, as on the CPU.
class ActivationCuda {
 public:
  explicit ActivationCuda(Act act);
  ~ActivationCuda();
  void forward(const float* x, float* y, int64_t rows, int64_t cols);
  // x is read by gelu only (own kernels: cuDNN has no GELU); the others may pass null.
  void backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                const float* x = nullptr);
  Act act() const { return act_; }

 private:
  // cuDNN does not document cudnnSoftmaxForward/Backward as safe in place: an aliased input is
  // copied here first.
  const float* unaliased(const float* in, const float* out, int64_t n);
  Act act_;
  cudnnActivationDescriptor_t desc_ = nullptr;
  TensorDesc t_;
  Tensor copy_;
};

}  // namespace dpt::cuda
