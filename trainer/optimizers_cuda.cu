// SGD, Adam and AdamW on the GPU: the same update formulas as trainer/optimizers.cpp, per element.
#include <cmath>

#include "models/kernels/cuda/cuda_context.h"
#include "trainer/optimizers.h"

namespace dpt {

namespace {

__global__ void sgd_kernel(float* w, const float* g, float* v, int64_t n, float lr, float mu,
                           float wd, bool nesterov) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float gi = g[i] + wd * w[i];
    if (mu > 0) {
      v[i] = mu * v[i] - lr * gi;
      w[i] += nesterov ? mu * v[i] - lr * gi : v[i];
    } else {
      w[i] -= lr * gi;
    }
  }
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, int64_t n, float alpha,
                            float b1, float b2, float eps, float decay, float l2) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float gi = g[i] + l2 * w[i];
    m[i] += (gi - m[i]) * (1 - b1);
    v[i] += (gi * gi - v[i]) * (1 - b2);
    w[i] -= decay * w[i] + alpha * m[i] / (sqrtf(v[i]) + eps);
  }
}

// Device state with host mirrors for checkpoints.
class StatefulCuda : public Optimizer {
 protected:
  void add_state(const std::string& name, int64_t n) {
    names_.push_back(name);
    device_.emplace_back(Shape{n}, Device::kCuda);
    host_.emplace_back(Shape{n});
  }
  float* dev(size_t i) { return device_[i].data(); }

 public:
  std::vector<std::pair<std::string, Tensor*>> state() override {
    std::vector<std::pair<std::string, Tensor*>> out;
    for (size_t i = 0; i < names_.size(); ++i) out.emplace_back(names_[i], &host_[i]);
    return out;
  }
  void download() override {
    for (size_t i = 0; i < names_.size(); ++i)
      copy_memory(host_[i].data(), false, device_[i].data(), true, size_t(host_[i].size()) * 4);
  }
  void upload() override {
    for (size_t i = 0; i < names_.size(); ++i)
      copy_memory(device_[i].data(), true, host_[i].data(), false, size_t(host_[i].size()) * 4);
  }

 private:
  std::vector<std::string> names_;
  std::vector<Tensor> device_, host_;
};

class SgdCuda : public StatefulCuda {
 public:
  SgdCuda(const OptimizerConfig& c, int64_t n) : c_(c), n_(n) {
    if (c.momentum > 0) add_state("velocity", n);
  }
  void step(float* w, const float* g, float lr) override {
    sgd_kernel<<<cuda::blocks_for(n_), 256, 0, cuda::stream()>>>(
        w, g, c_.momentum > 0 ? dev(0) : nullptr, n_, lr, float(c_.momentum),
        float(c_.weight_decay), c_.nesterov);
    DPT_CUDA_LAUNCH_CHECK();
    ++iterations_;
  }

 private:
  OptimizerConfig c_;
  int64_t n_;
};

class AdamCuda : public StatefulCuda {
 public:
  AdamCuda(const OptimizerConfig& c, int64_t n, bool decoupled) : c_(c), n_(n), decoupled_(decoupled) {
    add_state("m", n);
    add_state("v", n);
  }
  void step(float* w, const float* g, float lr) override {
    ++iterations_;
    const double t = double(iterations_);
    const float alpha =
        float(lr * std::sqrt(1.0 - std::pow(c_.beta2, t)) / (1.0 - std::pow(c_.beta1, t)));
    adam_kernel<<<cuda::blocks_for(n_), 256, 0, cuda::stream()>>>(
        w, g, dev(0), dev(1), n_, alpha, float(c_.beta1), float(c_.beta2), float(c_.epsilon),
        decoupled_ ? float(lr * c_.weight_decay) : 0.0f, decoupled_ ? 0.0f : float(c_.weight_decay));
    DPT_CUDA_LAUNCH_CHECK();
  }

 private:
  OptimizerConfig c_;
  int64_t n_;
  bool decoupled_;
};

}  // namespace

std::unique_ptr<Optimizer> make_cuda_optimizer(const OptimizerConfig& cfg, int64_t n) {
  if (cfg.kind == "sgd") return std::make_unique<SgdCuda>(cfg, n);
  return std::make_unique<AdamCuda>(cfg, n, cfg.kind == "adamw");
}

}  // namespace dpt
