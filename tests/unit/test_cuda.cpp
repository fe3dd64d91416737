// The GPU path against the CPU path: every layer forward and backward, the loss, an optimizer
// step and a full training step. Skips, with the reason, where there is no CUDA build or no GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "layer_harness.h"
#include "models/layers/softmax_cross_entropy.h"
#include "models/model.h"
#include "trainer/optimizers.h"

namespace dpt::testing {
namespace {

#ifdef DPT_WITH_CUDA
#define REQUIRE_GPU()                                                              \
  do {                                                                             \
    if (!cuda_available()) GTEST_SKIP() << "no usable GPU on this machine";        \
  } while (0)
#else
#define REQUIRE_GPU() GTEST_SKIP() << "this build has no CUDA backend (DPT_WITH_CUDA is off)"
#endif

Tensor to(const Tensor& t, Device d) {
  Tensor out(t.shape(), d);
  copy_memory(out.data(), d == Device::kCuda, t.data(), t.on_device(), size_t(t.size()) * sizeof(float));
  return out;
}

void expect_close(const Tensor& cpu, const Tensor& gpu, double tol, const std::string& what) {
  const Tensor g = to(gpu, Device::kCpu);
  ASSERT_EQ(cpu.size(), g.size());
  int bad = 0;
  for (int64_t i = 0; i < cpu.size(); ++i)
    if (std::fabs(cpu.data()[i] - g.data()[i]) > tol * (1 + std::fabs(cpu.data()[i])) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: cpu " << cpu.data()[i] << " gpu " << g.data()[i];
}

// The same layer, with the same parameter values, on both backends.
void compare_layer(const std::string& yaml, const Shape& in, int64_t batch, Mode mode = Mode::kTrain) {
  SCOPED_TRACE(yaml);
  LayerUnderTest cpu(yaml, in), gpu(yaml, in);
  std::vector<Tensor> dev_values, dev_grads;
  std::vector<Param*> ptrs;
  for (auto& p : gpu.params) {
    dev_values.push_back(to(Tensor::view(p.value, p.spec.shape), Device::kCuda));
    dev_grads.emplace_back(p.spec.shape, Device::kCuda);
    p.value = dev_values.back().data();
    p.grad = p.grad ? dev_grads.back().data() : nullptr;
    ptrs.push_back(&p);
  }
  gpu.layer->bind(ptrs);
  const StepContext ctx{mode, 3, 1, 7};
  const Tensor x = random_tensor(with_batch(batch, in), 21);
  const Tensor dy = random_tensor(with_batch(batch, cpu.out), 22);
  Tensor y(with_batch(batch, cpu.out)), dx(x.shape());
  cpu.layer->forward(x, y, ctx);
  cpu.layer->backward(x, y, dy, &dx);
  const Tensor xg = to(x, Device::kCuda), dyg = to(dy, Device::kCuda);
  Tensor yg(y.shape(), Device::kCuda), dxg(x.shape(), Device::kCuda);
  gpu.layer->forward(xg, yg, ctx);
  gpu.layer->backward(xg, yg, dyg, &dxg);
  expect_close(y, yg, 1e-4, "y");
  expect_close(dx, dxg, 1e-4, "dx");
  for (size_t k = 0; k < cpu.params.size(); ++k)
    if (cpu.params[k].grad)
      expect_close(Tensor::view(cpu.params[k].grad, cpu.params[k].spec.shape), dev_grads[k], 1e-3,
                   cpu.params[k].spec.name);
}

TEST(CudaVsCpu, Conv2D) {
  REQUIRE_GPU();
  compare_layer("conv2d: {filters: 8, kernel: 3, activation: relu}", {9, 9, 3}, 4);
  compare_layer("conv2d: {filters: 4, kernel: 2, padding: same, strides: 2}", {7, 6, 2}, 3);
  compare_layer("conv2d: {filters: 5, kernel: 3, padding: same, activation: tanh}", {6, 6, 4}, 2);
}

TEST(CudaVsCpu, Dense) {
  REQUIRE_GPU();
  compare_layer("dense: {units: 7, activation: relu}", {13}, 5);
  compare_layer("dense: {units: 4, activation: softmax}", {6}, 3);
  compare_layer("dense: {units: 3, use_bias: false}", {6}, 3);
}

TEST(CudaVsCpu, Pooling) {
  REQUIRE_GPU();
  compare_layer("max_pool: {pool: 2}", {8, 8, 4}, 3);
  compare_layer("max_pool: {pool: 2, padding: same}", {7, 7, 2}, 2);
  compare_layer("avg_pool: {pool: 3, padding: same}", {7, 7, 2}, 2);
  compare_layer("global_avg_pool: {}", {5, 4, 3}, 2);
}

TEST(CudaVsCpu, BatchNormDropoutActivations) {
  REQUIRE_GPU();
  compare_layer("batch_norm: {}", {4, 4, 6}, 8);
  compare_layer("batch_norm: {}", {4, 4, 6}, 8, Mode::kInfer);
  compare_layer("batch_norm: {}", {10}, 16);
  compare_layer("dropout: {rate: 0.3}", {40}, 4);  // same Philox masks on both
  for (const char* a : {"relu: {}", "sigmoid: {}", "tanh: {}", "softmax: {}"}) compare_layer(a, {9}, 3);
}

TEST(CudaVsCpu, SoftmaxCrossEntropy) {
  REQUIRE_GPU();
  const Tensor logits = random_tensor({6, 5}, 4, -3, 3);
  const std::vector<int32_t> labels{0, 4, 2, 2, 1, 3};
  Tensor grad({6, 5}), grad_g({6, 5}, Device::kCuda);
  const LossStats c = SoftmaxCrossEntropy::compute(logits, labels.data(), &grad, 0.5f);
  int32_t* dl = nullptr;
#ifdef DPT_WITH_CUDA
  Tensor labels_dev({2 * 6}, Device::kCuda);  // room for six int32 labels
  dl = reinterpret_cast<int32_t*>(labels_dev.data());
  copy_memory(dl, true, labels.data(), false, labels.size() * sizeof(int32_t));
#endif
  const LossStats g = SoftmaxCrossEntropy::compute(to(logits, Device::kCuda), dl, &grad_g, 0.5f);
  EXPECT_NEAR(c.loss_sum, g.loss_sum, 1e-5);
  EXPECT_EQ(c.correct, g.correct);
  expect_close(grad, grad_g, 1e-5, "dlogits");
}

TEST(CudaVsCpu, FullTrainingStepAndAdam) {
  REQUIRE_GPU();
  const char* yaml = R"(
input: [10, 10, 2]
layers:
  - conv2d: {filters: 6, kernel: 3, activation: relu}
  - max_pool: {pool: 2}
  - batch_norm: {}
  - flatten: {}
  - dropout: {rate: 0.2}
  - dense: {units: 4}
)";
  Model cpu(YAML::Load(yaml), "m"), gpu(YAML::Load(yaml), "m");
  cpu.initialize(3);
  gpu.initialize(3);
  gpu.to_device(Device::kCuda);
  OptimizerConfig oc;
  auto ocpu = make_optimizer(oc, cpu.num_trainable());
  auto ogpu = make_optimizer(oc, gpu.num_trainable(), Device::kCuda);
  const Tensor x = random_tensor({8, 10, 10, 2}, 5, 0, 1);
  const std::vector<int32_t> labels{0, 1, 2, 3, 3, 2, 1, 0};
  int32_t* dl = nullptr;
#ifdef DPT_WITH_CUDA
  Tensor labels_dev({8}, Device::kCuda);
  dl = reinterpret_cast<int32_t*>(labels_dev.data());
  copy_memory(dl, true, labels.data(), false, labels.size() * sizeof(int32_t));
#endif
  const Tensor xg = to(x, Device::kCuda);
  for (int step = 0; step < 3; ++step) {
    const StepContext ctx{Mode::kTrain, 1, 0, uint64_t(step)};
    SoftmaxCrossEntropy::compute(cpu.forward(x, ctx), labels.data(), &cpu.logits_grad(), 1.0f / 8);
    cpu.backward();
    ocpu->step(cpu.weights().data(), cpu.grads().data(), 0.01f);
    SoftmaxCrossEntropy::compute(gpu.forward(xg, ctx), dl, &gpu.logits_grad(), 1.0f / 8);
    gpu.backward();
    ogpu->step(gpu.weights().data(), gpu.grads().data(), 0.01f);
  }
  expect_close(cpu.weights(), gpu.weights(), 1e-3, "weights after 3 steps");
  expect_close(cpu.state(), gpu.state(), 1e-3, "batch-norm statistics");
}

}  // namespace
}  // namespace dpt::testing
