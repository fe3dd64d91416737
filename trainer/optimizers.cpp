// SGD, Adam and AdamW updates, vectorised loops over the flat buffers (OpenMP across cores).
#include "trainer/optimizers.h"

#include <cmath>

namespace dpt {

namespace {

// Note: weight decay in SGD is coupled L2 (g += wd * w), as PyTorch's SGD; AdamW's is decoupled
// (w -= lr * wd * w), as Loshchilov & Hutter and Keras' AdamW.
class Sgd : public Optimizer {
 public:
  Sgd(const OptimizerConfig& c, int64_t n) : c_(c), n_(n), velocity_({c.momentum > 0 ? n : 0}) {}
  void step(float* w, const float* g, float lr) override {
    const float mu = float(c_.momentum), wd = float(c_.weight_decay);
    float* v = velocity_.data();
    const bool nesterov = c_.nesterov;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n_; ++i) {
      const float gi = g[i] + wd * w[i];
      if (mu > 0) {
        // Keras form: v = mu * v - lr * g; w += v (Nesterov: w += mu * v - lr * g).
        v[i] = mu * v[i] - lr * gi;
        w[i] += nesterov ? mu * v[i] - lr * gi : v[i];
      } else {
        w[i] -= lr * gi;
      }
    }
    ++iterations_;
  }
  std::vector<std::pair<std::string, Tensor*>> state() override {
    if (c_.momentum > 0) return {{"velocity", &velocity_}};
    return {};
  }

 private:
  OptimizerConfig c_;
  int64_t n_;
  Tensor velocity_;
};

class Adam : public Optimizer {
 public:
  Adam(const OptimizerConfig& c, int64_t n, bool decoupled)
      : c_(c), n_(n), decoupled_(decoupled), m_({n}), v_({n}) {}
  void step(float* w, const float* g, float lr) override {
    ++iterations_;
    const double t = double(iterations_);
    const float b1 = float(c_.beta1), b2 = float(c_.beta2), eps = float(c_.epsilon);
    // Keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); w -= alpha * m / (sqrt(v) + eps).
    const float alpha =
        float(lr * std::sqrt(1.0 - std::pow(c_.beta2, t)) / (1.0 - std::pow(c_.beta1, t)));
    const float decay = decoupled_ ? float(lr * c_.weight_decay) : 0.0f;
    const float l2 = decoupled_ ? 0.0f : float(c_.weight_decay);
    float* m = m_.data();
    float* v = v_.data();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n_; ++i) {
      const float gi = g[i] + l2 * w[i];
      m[i] += (gi - m[i]) * (1 - b1);
      v[i] += (gi * gi - v[i]) * (1 - b2);
      w[i] -= decay * w[i] + alpha * m[i] / (std::sqrt(v[i]) + eps);
    }
  }
  std::vector<std::pair<std::string, Tensor*>> state() override {
    return {{"m", &m_}, {"v", &v_}};
  }

 private:
  OptimizerConfig c_;
  int64_t n_;
  bool decoupled_;
  Tensor m_, v_;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, int64_t n, Device device) {
#ifdef DPT_WITH_CUDA
  if (device == Device::kCuda) return make_cuda_optimizer(cfg, n);
#endif
  DPT_CHECK(device == Device::kCpu, "this dptrain was built without CUDA");
  if (cfg.kind == "sgd") return std::make_unique<Sgd>(cfg, n);
  if (cfg.kind == "adam") return std::make_unique<Adam>(cfg, n, false);
  if (cfg.kind == "adamw") return std::make_unique<Adam>(cfg, n, true);
  DPT_FAIL("unknown optimizer '" << cfg.kind << "'");
}

}  // namespace dpt
