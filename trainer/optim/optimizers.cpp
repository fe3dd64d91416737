// SGD and Adam/AdamW: state, bias correction and the choice of kernel by device.
#include "trainer/optim/optimizers.h"

#include <cmath>

#include "models/kernels/update_rules.h"
#include "models/model.h"

namespace dpt {

float* Optimizer::add_state(const std::string& name) {
  names_.push_back(name);
  device_state_.emplace_back(Shape{n_}, device_);
  host_state_.push_back(on_device() ? Tensor(Shape{n_}) : device_state_.back());
  return device_state_.back().data();
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < names_.size(); ++i) out.emplace_back(names_[i], &host_state_[i]);
  return out;
}

void Optimizer::download() {
  if (!on_device()) return;
  for (size_t i = 0; i < names_.size(); ++i)
    copy_memory(host_state_[i].data(), false, device_state_[i].data(), true,
                size_t(n_) * sizeof(float));
}

void Optimizer::upload() {
  if (!on_device()) return;
  for (size_t i = 0; i < names_.size(); ++i)
    copy_memory(device_state_[i].data(), true, host_state_[i].data(), false,
                size_t(n_) * sizeof(float));
}

namespace {

class Sgd : public Optimizer {
 public:
  Sgd(const OptimizerConfig& c, int64_t n, Device d) : Optimizer(n, d) {
    rule_.momentum = float(c.momentum);
    rule_.weight_decay = float(c.weight_decay);
    rule_.nesterov = c.nesterov;
    if (c.momentum > 0) velocity_ = add_state("velocity");
  }
  void step(float* w, const float* g, float lr) override {
    for_each_segment([&](int64_t b, int64_t e, bool decayed, float lr_scale) {
      SgdRule r = rule_;
      // A scaled learning rate keeps the decay per step (lr * wd) of the other weights, as
      // airbench's bias_scaler does: the multiplier speeds learning, not shrinking.
      r.weight_decay = decayed ? rule_.weight_decay / lr_scale : 0.0f;
      float* v = velocity_ ? velocity_ + b : nullptr;
      if (on_device()) {
        sgd_update_cuda(w + b, g + b, v, e - b, r, lr * lr_scale);
      } else {
        sgd_update_cpu(w + b, g + b, v, e - b, r, lr * lr_scale);
      }
    });
    ++iterations_;
  }

 private:
  SgdRule rule_;
  float* velocity_ = nullptr;
};

// Note: Adam's weight decay is coupled L2 (g += wd * w); AdamW's is decoupled (w -= lr * wd
// * w), as Loshchilov & Hutter and Keras' AdamW.
class Adam : public Optimizer {
 public:
  Adam(const OptimizerConfig& c, int64_t n, Device d, bool decoupled)
      : Optimizer(n, d), c_(c), decoupled_(decoupled) {
    m_ = add_state("m");
    v_ = add_state("v");
  }
  void step(float* w, const float* g, float lr) override {
    ++iterations_;
    const double t = double(iterations_);
    AdamRule r;
    // Keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); w -= alpha * m / (sqrt(v) + eps).
    r.alpha = float(lr * std::sqrt(1.0 - std::pow(c_.beta2, t)) / (1.0 - std::pow(c_.beta1, t)));
    r.beta1 = float(c_.beta1);
    r.beta2 = float(c_.beta2);
    r.epsilon = float(c_.epsilon);
    r.decay = decoupled_ ? float(lr * c_.weight_decay) : 0.0f;
    r.l2 = decoupled_ ? 0.0f : float(c_.weight_decay);
    for_each_segment([&](int64_t b, int64_t e, bool decayed, float) {  // no lr_scale for Adam
      AdamRule piece = r;
      if (!decayed) piece.decay = piece.l2 = 0;
      if (on_device()) {
        adam_update_cuda(w + b, g + b, m_ + b, v_ + b, e - b, piece);
      } else {
        adam_update_cpu(w + b, g + b, m_ + b, v_ + b, e - b, piece);
      }
    });
  }

 private:
  OptimizerConfig c_;
  bool decoupled_;
  float *m_ = nullptr, *v_ = nullptr;
};

}  // namespace

std::vector<Optimizer::Range> optimizer_ranges(const Model& model, const OptimizerConfig& cfg) {
  const bool keep_off = !cfg.decay_bias_and_norm && cfg.weight_decay > 0;
  if (!keep_off && cfg.norm_lr_scale == 1.0) return {};
  std::vector<Optimizer::Range> out;
  const float* base = model.host_weights().data();
  for (const Param& p : model.params()) {
    if (!p.grad) continue;
    const std::string& n = p.spec.name;
    const bool norm = n == "gamma" || n == "beta";
    Optimizer::Range r{p.host_value - base, p.host_value - base + p.size(),
                       !(keep_off && (norm || n == "bias")),
                       norm ? float(cfg.norm_lr_scale) : 1.0f};
    if (r.decayed && r.lr_scale == 1.0f) continue;  // the default: no range needed
    if (!out.empty() && out.back().end == r.begin && out.back().decayed == r.decayed &&
        out.back().lr_scale == r.lr_scale) {
      out.back().end = r.end;  // adjacent and alike: one range
    } else {
      out.push_back(r);
    }
  }
  return out;
}

const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
  }
  return "?";
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, int64_t n, Device device) {
  switch (cfg.kind) {
    case OptimizerKind::kSgd:
      return std::make_unique<Sgd>(cfg, n, device);
    case OptimizerKind::kAdam:
      return std::make_unique<Adam>(cfg, n, device, false);
    case OptimizerKind::kAdamW:
      return std::make_unique<Adam>(cfg, n, device, true);
  }
  DPT_FAIL("unknown optimizer kind " << int(cfg.kind));
}

}  // namespace dpt
