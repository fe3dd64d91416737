// Optimizers over the flat parameter buffer: one class per rule (SGD; Adam and AdamW), whose
// per-element update is a kernel per backend (models/kernels/update_rules.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "trainer/config.h"

namespace dpt {

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
  // Element ranges [begin, end) of the flat buffer that get no weight decay (biases and
  // BatchNorm gamma/beta when decay_bias_and_norm is false), sorted, not overlapping.
  void set_no_decay(std::vector<std::pair<int64_t, int64_t>> ranges) { no_decay_ = std::move(ranges); }
  void set_iterations(int64_t t) { iterations_ = t; }

 protected:
  Optimizer(int64_t n, Device device) : n_(n), device_(device) {}
  float* add_state(const std::string& name);  // zeroed, n floats on the device
  bool on_device() const { return device_ == Device::kCuda; }
  // Runs update(begin, end, decayed) over [0, n_) in pieces: decayed except in no_decay_.
  template <typename F>
  void for_each_segment(F update) const {
    int64_t at = 0;
    for (const auto& [b, e] : no_decay_) {
      if (b > at) update(at, b, true);
      if (e > b) update(b, e, false);
      at = e;
    }
    if (at < n_) update(at, n_, true);
  }
  int64_t n_;
  int64_t iterations_ = 0;
  std::vector<std::pair<int64_t, int64_t>> no_decay_;

 private:
  Device device_;
  std::vector<std::string> names_;
  std::vector<Tensor> device_state_, host_state_;  // the same tensors on the CPU
};

// The flat-buffer ranges of biases and BatchNorm gamma/beta (for Optimizer::set_no_decay).
class Model;
std::vector<std::pair<int64_t, int64_t>> bias_and_norm_ranges(const Model& model);

// sgd, adam or adamw by cfg.kind (any other name is an error), state on `device`.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, int64_t num_weights,
                                          Device device = Device::kCpu);

}  // namespace dpt
