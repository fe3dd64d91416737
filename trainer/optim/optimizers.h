// Optimizers over the flat parameter buffer: one class per rule (SGD; Adam and AdamW), whose
// per-element update is a kernel per backend (models/kernels/update_rules.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dpt {

enum class OptimizerKind { kSgd, kAdam, kAdamW };
const char* optimizer_name(OptimizerKind k);  // "sgd", "adam", "adamw": the config's names

// train.optimizer (parsed in trainer/config.cpp).
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdam;
  double lr = 1e-3, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  bool decay_bias_and_norm = true;  // false: no weight decay on biases and BatchNorm gamma/beta
  double norm_lr_scale = 1.0;       // sgd: BatchNorm gamma/beta learn at this times lr
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;  // Keras' defaults
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of the n weights from their (already averaged) gradients at learning rate lr;
  // w and g live on the optimizer's device.
  virtual void step(float* w, const float* g, float lr) = 0;
  // Named host buffers of the state (moments) for checkpoints: on a GPU, download() fills them
  // from the device state and upload() copies them back.
  std::vector<std::pair<std::string, Tensor*>> state();
  void download();
  void upload();
  int64_t iterations() const { return iterations_; }
  // Element ranges [begin, end) of the flat buffer treated apart: no weight decay (biases and
  // BatchNorm gamma/beta when decay_bias_and_norm is false) and/or a learning-rate multiplier
  // (BatchNorm gamma/beta under sgd's norm_lr_scale). Sorted, not overlapping; elements outside
  // every range are decayed at the plain rate.
  struct Range {
    int64_t begin = 0, end = 0;
    bool decayed = true;
    float lr_scale = 1.0f;
  };
  void set_ranges(std::vector<Range> ranges) { ranges_ = std::move(ranges); }
  void set_iterations(int64_t t) { iterations_ = t; }
  // A named state buffer of n zeroed floats on the optimizer's device, kept in checkpoints
  // with the rule's own (Lookahead's slow weights are one: trainer/optim/lookahead.h).
  float* add_state(const std::string& name);
  int64_t size() const { return n_; }
  bool on_device() const { return device_ == Device::kCuda; }

 protected:
  Optimizer(int64_t n, Device device) : n_(n), device_(device) {}
  // Runs update(begin, end, decayed, lr_scale) over [0, n_) in pieces, as ranges_ says.
  template <typename F>
  void for_each_segment(F update) const {
    int64_t at = 0;
    for (const Range& r : ranges_) {
      if (r.begin > at) update(at, r.begin, true, 1.0f);
      if (r.end > r.begin) update(r.begin, r.end, r.decayed, r.lr_scale);
      at = r.end;
    }
    if (at < n_) update(at, n_, true, 1.0f);
  }
  int64_t n_;
  int64_t iterations_ = 0;
  std::vector<Range> ranges_;

 private:
  Device device_;
  std::vector<std::string> names_;
  std::vector<Tensor> device_state_, host_state_;  // the same tensors on the CPU
};

class Model;
// The optimizer's ranges for a config: biases and BatchNorm gamma/beta undecayed unless
// decay_bias_and_norm, BatchNorm gamma/beta at norm_lr_scale times the learning rate. Empty
// when neither applies (one update over the whole buffer).
std::vector<Optimizer::Range> optimizer_ranges(const Model& model, const OptimizerConfig& cfg);

// sgd, adam or adamw by cfg.kind, state on `device`.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, int64_t num_weights,
                                          Device device = Device::kCpu);

}  // namespace dpt
