// Optimizer update rules, one formula per backend: kernels/cpu/update_rules_cpu.cpp and
// kernels/cuda/update_rules_cuda.cu (the Optimizer classes in trainer/ choose by device).
#pragma once
#include <cstdint>

namespace dpt {

// SGD as Keras writes it: v = mu * v - lr * g; w += v (Nesterov: w += mu * v - lr * g), with
// coupled L2 weight decay (g += wd * w), as PyTorch's SGD. v may be null when mu == 0.
struct SgdRule {
  float momentum = 0, weight_decay = 0;
  bool nesterov = false;
};
void sgd_update_cpu(float* w, const float* g, float* v, int64_t n, const SgdRule& r, float lr);
void sgd_update_cuda(float* w, const float* g, float* v, int64_t n, const SgdRule& r, float lr);

// Adam / AdamW with the step's bias correction folded into alpha (Keras):
// m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= decay * w + alpha * m / (sqrt(v) + eps).
// l2 couples weight decay into g (Adam), decay is decoupled (AdamW: lr * wd).
struct AdamRule {
  float alpha = 0, beta1 = 0, beta2 = 0, epsilon = 0, decay = 0, l2 = 0;
};
void adam_update_cpu(float* w, const float* g, float* m, float* v, int64_t n, const AdamRule& r);
void adam_update_cuda(float* w, const float* g, float* m, float* v, int64_t n, const AdamRule& r);

// Lookahead's sync (Note [lookahead] in trainer/optim/lookahead.h): slow = rho slow + (1 - rho) w;
// w = slow.
void lookahead_sync_cpu(float* w, float* slow, int64_t n, float rho);
void lookahead_sync_cuda(float* w, float* slow, int64_t n, float rho);

}  // namespace dpt
