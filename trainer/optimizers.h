// Optimizers over the flat parameter buffer: SGD (momentum, Nesterov, L2), Adam and AdamW as Keras defines them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/tensor/tensor.h"
#include "trainer/config.h"

namespace dpt {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of n weights from their (already averaged) gradients at learning rate lr.
  virtual void step(float* w, const float* g, float lr) = 0;
  // Named host state buffers (moments) for checkpoints; "step" count is separate. A GPU
  // optimizer copies its device state into them in download() and back in upload().
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;
  virtual void download() {}
  virtual void upload() {}
  int64_t iterations() const { return iterations_; }
  void set_iterations(int64_t t) { iterations_ = t; }

 protected:
  int64_t iterations_ = 0;
};

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& cfg, int64_t num_weights,
                                          Device device = Device::kCpu);
#ifdef DPT_WITH_CUDA
std::unique_ptr<Optimizer> make_cuda_optimizer(const OptimizerConfig& cfg, int64_t num_weights);
#endif

}  // namespace dpt
