// Model: a Keras-like Sequential built from the config's layer list, with flat parameter buffers.
#pragma once
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>

#include "models/layers/layer.h"

namespace dpt {

// Note [flat buffers]: all trainable parameters live in one contiguous buffer in layer order,
// and their gradients in a twin buffer, so the optimizer and the all-reduce work on plain
// ranges. Non-trainable state (BatchNorm moving statistics) lives in a third buffer.
// One image's activations above this (1 GiB of float) is a config error, not a model.
constexpr int64_t kMaxSampleElements = int64_t{1} << 28;

class Model {
 public:
  // Builds from the `model:` node of a config (errors name model.layers[i] and the line).
  Model(const YAML::Node& model_node, std::string name);
  Model(const Model&) = delete;

  const std::string& name() const { return name_; }
  const Shape& input_shape() const { return shapes_.front(); }
  const Shape& output_shape() const { return shapes_.back(); }
  int64_t num_classes() const { return shapes_.back().at(0); }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  const std::vector<Shape>& shapes() const { return shapes_; }  // per sample, L + 1 of them
  int first_param_layer() const { return first_param_layer_; }   // backward stops there
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }

  int param_layer(size_t k) const { return param_layer_[k]; }  // layer index owning params()[k]
  Tensor& weights() { return weights_; }                       // trainable values
  Tensor& grads() { return grads_; }                           // their gradients
  Tensor& state() { return state_; }                           // non-trainable values
  int64_t num_trainable() const { return weights_.size(); }
  int64_t num_non_trainable() const { return state_.size(); }

  // Keras initialisers, deterministic in seed (identical on every rank).
  void initialize(uint64_t seed);

  // Moves parameters, gradients and activations to the GPU; the host buffers stay as mirrors
  // (Param::host_value) for broadcasts and checkpoints.
  void to_device(Device device);
  Device device() const { return device_; }
  void download();  // device values -> host mirrors (before writing a checkpoint)
  // Every layer's arithmetic (Note [precision]), checked against this machine; before the
  // first forward.
  void set_precision(Precision p);
  Precision precision() const { return precision_; }
  void upload();  // host mirrors -> device values (after reading one)
  Tensor& host_weights() { return host_weights_; }
  const Tensor& host_weights() const { return host_weights_; }
  Tensor& host_state() { return host_state_; }

  // Runs every layer; returns the logits (N, classes). Buffers exist per batch size.
  const Tensor& forward(const Tensor& x, const StepContext& ctx);
  // The buffer the loss writes d(loss)/d(logits) into, for the batch size of the last forward.
  Tensor& logits_grad();
  // Backward from logits_grad(), last layer first; on_layer_done(i) runs once layer i's
  // parameter gradients are final (the gradient reducer hooks in here).
  void backward(const std::function<void(int)>& on_layer_done = {});

  std::string summary() const;
  // "Conv2D(3,3,1,32)|MaxPooling2D|..." : layer types and parameter shapes, for mismatch checks.
  std::vector<std::string> signature() const;
  std::string signature_text() const;  // one line per layer, as checkpoints store it

 private:
  // The constructor's phases.
  std::vector<ParamSpec> build_layers(const YAML::Node& model_node);
  void check_ends_in_logits() const;
  void fuse_relu_into_pools();
  void lay_out_parameters(const std::vector<ParamSpec>& specs);
  struct Buffers {
    std::vector<Tensor> acts;   // acts[i] is the input of layer i; acts[L] the logits
    std::vector<Tensor> grads;  // grads[i] = d(loss)/d(acts[i])
  };
  Buffers& buffers(int64_t batch);

  std::string name_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Shape> shapes_;
  std::vector<Param> params_;
  std::vector<int> param_layer_;  // which layer owns params_[k]
  int first_param_layer_ = 0;     // earliest layer with trainable parameters
  Tensor weights_, grads_, state_;
  Tensor host_weights_, host_state_;  // the same tensors as weights_/state_ on the CPU
  Device device_ = Device::kCpu;
  Precision precision_ = Precision::kFp32;
  std::map<int64_t, Buffers> buffers_;
  Buffers* current_ = nullptr;
};

// Where two signature texts first differ: the layer index and its lines ("<none>" past the end).
struct SignatureDifference {
  bool differ = false;
  int layer = 0;
  std::string a, b;
};
SignatureDifference first_difference(const std::string& a, const std::string& b);

}  // namespace dpt
