// Layer: the interface every layer implements (shapes, parameters, forward and backward).
#pragma once
#include <string>
#include <vector>

#include "models/tensor/tensor.h"

namespace dpt {

enum class Mode { kTrain, kInfer };

// Owns a backend's per-layer state (oneDNN primitives, later cuDNN descriptors) whose type
// is only complete in that backend's kernel file; each kernel file defines the operator().
template <typename T>
struct BackendDeleter {
  void operator()(T* p) const;
};

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
  std::string init;  // initializer name, see models/core/initializers.h
  int64_t fan_in = 0, fan_out = 0;
};

// A bound parameter: value (and gradient if trainable) point into the Model's flat buffers.
struct Param {
  ParamSpec spec;
  float* value = nullptr;
  float* grad = nullptr;  // null for non-trainable state (BatchNorm moving statistics)
  float* host_value = nullptr;  // == value on the CPU; the host mirror when value is on a GPU
  int64_t size() const { return num_elements(spec.shape); }
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string type() const = 0;  // Keras class name, shown by summary
  // Shapes exclude the batch dimension: (H, W, C) or (F).
  virtual Shape output_shape(const Shape& in) const = 0;
  virtual std::vector<ParamSpec> param_specs(const Shape& in) const { return {}; }
  virtual void bind(const std::vector<Param*>& params) {}
  // True for layers that only reinterpret their input (Flatten): the Model aliases storage.
  virtual bool is_reshape() const { return false; }
  // x and y carry the batch dimension. Primitives are built on the first call for a batch
  // size and reused after, so a steady-state step allocates nothing.
  virtual void forward(const Tensor& x, Tensor& y, const StepContext& ctx) = 0;
  // dx is null for the first layer (no gradient wanted for the data).
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) = 0;

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  int index() const { return index_; }
  void set_index(int i) { index_ = i; }
  std::string label() const { return "layer '" + name_ + "' (" + type() + ")"; }

 private:
  std::string name_;
  int index_ = 0;
};

}  // namespace dpt
