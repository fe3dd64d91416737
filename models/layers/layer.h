// Layer: the interface every op implements (shapes, parameters) and its one CPU/GPU dispatch point.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/precision.h"
#include "core/tensor.h"

namespace dpt {

enum class Mode { kTrain, kInfer };

// Owns a backend's per-layer state (oneDNN primitives, cuDNN descriptors) whose type is only
// complete in that backend's kernel file; each kernel file defines the operator().
template <typename T>
struct BackendDeleter {
  void operator()(T* p) const;
};
template <typename T>
using BackendState = std::unique_ptr<T, BackendDeleter<T>>;

// What a forward pass may depend on besides its input: the random streams of dropout are
// keyed by (seed, rank, step, layer index), see Note [random streams].
struct StepContext {
  Mode mode = Mode::kInfer;
  uint64_t seed = 0;
  uint32_t rank = 0;
  uint64_t step = 0;
};

// A parameter a layer asks for; the Model allocates it inside one flat buffer.
struct ParamSpec {
  std::string name;  // Keras' name: kernel, bias, gamma, beta, moving_mean, moving_variance
  Shape shape;
  bool trainable = true;
  std::string init;  // initializer name, see models/initializers.h
  int64_t fan_in = 0, fan_out = 0;
};

// A bound parameter: value (and gradient if trainable) point into the Model's flat buffers.
struct Param {
  ParamSpec spec;
  float* value = nullptr;
  float* grad = nullptr;        // null for non-trainable state (BatchNorm moving statistics)
  float* host_value = nullptr;  // == value on the CPU; the host mirror when value is on a GPU
  int64_t size() const { return num_elements(spec.shape); }
};

// Note [one shape]: every op is models/layers/X.{h,cpp} (options, shapes, parameters; no
// oneDNN or CUDA header), kernels/cpu/X_cpu.cpp (forward_cpu, backward_cpu on oneDNN) and
// kernels/cuda/X_cuda.cu (forward_cuda, backward_cuda on cuDNN/cuBLAS). forward() and
// backward() below are the one place that chooses between them, by the tensor's device, as
// Caffe's Layer::Forward does. A CPU-only build links kernels/cpu/no_cuda.cpp instead of the
// .cu files: its *_cuda say that the build has no CUDA.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string type() const = 0;  // Keras class name, shown by summary
  // Shapes exclude the batch dimension: (H, W, C) or (F).
  virtual Shape output_shape(const Shape& in) const = 0;
  virtual std::vector<ParamSpec> param_specs(const Shape& in) const { return {}; }
  // Floating-point operations of one sample's forward (2 per multiply-add) for the layers that
  // are matrix products (convolutions, dense); 0 for the memory-bound rest. dptrain profile
  // rates each layer against the machine's SGEMM with it.
  virtual double forward_flops(const Shape& in) const { return 0; }
  virtual void bind(const std::vector<Param*>& params) {}
  // True for layers that only reinterpret their input (Flatten): the Model aliases storage.
  virtual bool is_reshape() const { return false; }

  // x and y carry the batch dimension. Kernels build their primitives on the first call for a
  // batch size and reuse them after, so a steady-state step allocates nothing.
  void forward(const Tensor& x, Tensor& y, const StepContext& ctx) {
    if (x.on_device()) {
      forward_cuda(x, y, ctx);
    } else {
      forward_cpu(x, y, ctx);
    }
  }
  // dx is null for the first layer (no gradient wanted for the data).
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
    if (dy.on_device()) {
      backward_cuda(x, y, dy, dx);
    } else {
      backward_cpu(x, y, dy, dx);
    }
  }

  // Set before the first forward (kernels build their primitives for it): Note [precision].
  void set_precision(Precision p) { precision_ = p; }
  Precision precision() const { return precision_; }

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  int index() const { return index_; }
  void set_index(int i) { index_ = i; }
  std::string label() const { return "layer '" + name_ + "' (" + type() + ")"; }

 protected:
  Precision precision_ = Precision::kFp32;
  virtual void forward_cpu(const Tensor& x, Tensor& y, const StepContext& ctx) = 0;
  virtual void backward_cpu(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) = 0;
  virtual void forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx) = 0;
  virtual void backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) = 0;

 private:
  std::string name_;
  int index_ = 0;
};

// Declares the four kernels of an op inside its class (the definitions live in the kernel
// files of Note [one shape]).
#define DPT_OP_KERNELS                                                                        \
 protected:                                                                                   \
  void forward_cpu(const Tensor& x, Tensor& y, const StepContext& ctx) override;              \
  void backward_cpu(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override; \
  void forward_cuda(const Tensor& x, Tensor& y, const StepContext& ctx) override;             \
  void backward_cuda(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;

}  // namespace dpt
