// The GPU path against the CPU path: every layer forward and backward, the loss, an optimizer
// step and a full training step. Skips, with the reason, where there is no CUDA build or no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "layer_harness.h"
#include "models/layers/softmax_cross_entropy.h"
#include "models/model.h"
#include "trainer/optim/optimizers.h"

namespace dpt::testing {
namespace {

#ifdef DPT_WITH_CUDA
#define REQUIRE_GPU()                                                       \
  do {                                                                      \
    if (!cuda_available()) GTEST_SKIP() << "no usable GPU on this machine"; \
  } while (0)
#else
#define REQUIRE_GPU() GTEST_SKIP() << "this build has no CUDA backend (DPT_WITH_CUDA is off)"
#endif

Tensor to(const Tensor& t, Device d) {
  Tensor out(t.shape(), d);
  copy_memory(out.data(), d == Device::kCuda, t.data(), t.on_device(),
              size_t(t.size()) * sizeof(float));
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

// Gradients: |cpu - gpu| <= tol times the tensor's largest |cpu| value, so that small entries
// get no looser a bound than large ones (a per-element 1e-3 (1 + |g|) let ~10% through on
// gradients near 1e-2). Both sides are FP32 with deterministic algorithms and differ only in
// summation order: about 1e-6 of the largest value for sums of a few hundred terms, so 1e-4
// leaves a wide margin. The worst ratio is printed, as the measurement to tighten it further.
void expect_close_to_largest(const Tensor& cpu, const Tensor& gpu, double tol,
                             const std::string& what) {
  const Tensor g = to(gpu, Device::kCpu);
  ASSERT_EQ(cpu.size(), g.size());
  double largest = 1e-30, worst = 0;
  for (int64_t i = 0; i < cpu.size(); ++i)
    largest = std::max(largest, double(std::fabs(cpu.data()[i])));
  int bad = 0;
  for (int64_t i = 0; i < cpu.size(); ++i) {
    const double d = std::fabs(double(cpu.data()[i]) - double(g.data()[i])) / largest;
    worst = std::max(worst, d);
    if (d > tol && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: cpu " << cpu.data()[i] << " gpu " << g.data()[i]
                    << " (largest |value| " << largest << ")";
  }
  std::printf("measured: %s: max |cpu - gpu| / max |cpu| = %.3g\n", what.c_str(), worst);
}

// The same layer, with the same parameter values, on both backends. Training mode runs forward
// and backward; inference mode forward only (a backward after an inference forward reads
// batch statistics that were never computed, on either backend).
void compare_layer(const std::string& yaml, const Shape& in, int64_t batch,
                   Mode mode = Mode::kTrain, const Tensor* input = nullptr) {
  SCOPED_TRACE(yaml + " batch " + std::to_string(batch));
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
  const Tensor x = input ? *input : random_tensor(with_batch(batch, in), 21);
  const Tensor dy = random_tensor(with_batch(batch, cpu.out), 22);
  Tensor y(with_batch(batch, cpu.out)), dx(x.shape());
  const Tensor xg = to(x, Device::kCuda), dyg = to(dy, Device::kCuda);
  Tensor yg(y.shape(), Device::kCuda), dxg(x.shape(), Device::kCuda);
  cpu.layer->forward(x, y, ctx);
  gpu.layer->forward(xg, yg, ctx);
  expect_close(y, yg, 1e-4, "y");
  if (mode == Mode::kInfer) return;
  cpu.layer->backward(x, y, dy, &dx);
  gpu.layer->backward(xg, yg, dyg, &dxg);
  expect_close(dx, dxg, 1e-4, "dx");
  for (size_t k = 0; k < cpu.params.size(); ++k) {
    const Tensor cpu_value = Tensor::view(cpu.params[k].value, cpu.params[k].spec.shape);
    if (cpu.params[k].grad)
      expect_close_to_largest(Tensor::view(cpu.params[k].grad, cpu.params[k].spec.shape),
                              dev_grads[k], 1e-4, yaml + " " + cpu.params[k].spec.name);
    else  // moving statistics after one training step
      expect_close(cpu_value, dev_values[k], 1e-4, cpu.params[k].spec.name);
  }
}

TEST(CudaVsCpu, Conv2D) {
  REQUIRE_GPU();
  for (int64_t batch : {4, 7}) {  // two batch sizes: one plan each
    compare_layer("conv2d: {filters: 8, kernel: 3, activation: relu}", {9, 9, 3}, batch);
    // Asymmetric 'same' (TF pads one more at the bottom/right): explicit pad and crop on cuDNN.
    compare_layer("conv2d: {filters: 4, kernel: 2, padding: same, strides: 2}", {7, 6, 2}, batch);
    compare_layer("conv2d: {filters: 4, kernel: 4, padding: same}", {6, 6, 2}, batch);
    compare_layer("conv2d: {filters: 5, kernel: 3, padding: same, activation: tanh}", {6, 6, 4},
                  batch);
  }
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
  compare_layer("batch_norm: {}", {4, 4, 6}, 8);  // 4-D, moving statistics compared too
  compare_layer("batch_norm: {}", {4, 4, 6}, 8, Mode::kInfer);
  compare_layer("batch_norm: {}", {10}, 16);  // 2-D
  // A variance far below epsilon: the case where 1/inv_std^2 - eps cancelled.
  const Tensor flat = random_tensor({16, 10}, 8, 0.5f, 0.5001f);
  compare_layer("batch_norm: {}", {10}, 16, Mode::kTrain, &flat);
  compare_layer("dropout: {rate: 0.3}", {40}, 4);    // same Philox masks on both
  compare_layer("dropout: {rate: 0.3}", {7, 3}, 3);  // n % 4 != 0: a partial last block
  compare_layer("dropout: {rate: 0.3}", {40}, 4, Mode::kInfer);
  for (const char* a : {"relu: {}", "sigmoid: {}", "tanh: {}", "softmax: {}", "gelu: {}"})
    compare_layer(a, {9}, 3);
}

// The fast recipe's options (configs/cifar10_fast.yaml): BatchNorm without gamma, a frozen
// conv, a rescaling of the logits.
TEST(CudaVsCpu, FastRecipeOptions) {
  REQUIRE_GPU();
  compare_layer("batch_norm: {scale: false, momentum: 0.6}", {4, 4, 6}, 8);
  compare_layer("conv2d: {filters: 6, kernel: 2, trainable: false}", {5, 5, 3}, 4);
  compare_layer("rescaling: {scale: 0.125, offset: 1}", {10}, 3);
}

// Note [max-pool ties]: where several inputs of a window share the maximum (blank image regions
// after a ReLU give many), oneDNN sends the gradient to the first, cuDNN to one of them, not
// specified. Each window's gradient sum is the same on both (tolerance 1e-5); element by
// element they agree except inside tied windows, which this test counts and reports.
TEST(CudaVsCpu, MaxPoolTiesMoveTheGradientOnlyWithinTheirWindow) {
  REQUIRE_GPU();
  Tensor x = random_tensor({2, 8, 8, 3}, 31, -1, 1);
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = std::max(0.0f, x.data()[i]);  // ties of 0
  LayerUnderTest cpu("max_pool: {pool: 2}", {8, 8, 3}), gpu("max_pool: {pool: 2}", {8, 8, 3});
  const Tensor dy = random_tensor({2, 4, 4, 3}, 32);
  Tensor y({2, 4, 4, 3}), dx(x.shape());
  const StepContext ctx{Mode::kTrain, 1, 0, 0};
  cpu.layer->forward(x, y, ctx);
  cpu.layer->backward(x, y, dy, &dx);
  const Tensor xg = to(x, Device::kCuda), dyg = to(dy, Device::kCuda);
  Tensor yg(y.shape(), Device::kCuda), dxg(x.shape(), Device::kCuda);
  gpu.layer->forward(xg, yg, ctx);
  gpu.layer->backward(xg, yg, dyg, &dxg);
  expect_close(y, yg, 0, "y");
  const Tensor g = to(dxg, Device::kCpu);
  int tied_windows = 0;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t oy = 0; oy < 4; ++oy)
      for (int64_t ox = 0; ox < 4; ++ox)
        for (int64_t c = 0; c < 3; ++c) {
          double sc = 0, sg = 0;
          int maxima = 0;
          const float m = y.data()[((n * 4 + oy) * 4 + ox) * 3 + c];
          for (int64_t dy_ = 0; dy_ < 2; ++dy_)
            for (int64_t dx_ = 0; dx_ < 2; ++dx_) {
              const int64_t i = ((n * 8 + oy * 2 + dy_) * 8 + ox * 2 + dx_) * 3 + c;
              sc += dx.data()[i];
              sg += g.data()[i];
              maxima += x.data()[i] == m;
            }
          EXPECT_NEAR(sc, sg, 1e-5) << "window " << n << "," << oy << "," << ox << "," << c;
          tied_windows += maxima > 1;
        }
  EXPECT_GT(tied_windows, 0) << "the input was meant to contain ties";
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

// Gradients, not updated weights (Adam's first steps would hide a gradient-scale error): the
// flat gradient after step 1 and after step 2 (SGD without momentum in between), at two batch
// sizes, through valid and asymmetric-'same' convolutions, 4-D and 2-D BatchNorm, dropout on a
// size that is not a multiple of 4, and max pooling over ReLU outputs (ties, Note [max-pool
// ties]: compared by the conv gradients upstream, which sum over each window).
TEST(CudaVsCpu, FlatGradientsOfTwoStepsAtTwoBatchSizes) {
  REQUIRE_GPU();
  const char* yaml = R"(
input: [9, 9, 2]
layers:
  - conv2d: {filters: 4, kernel: 3, activation: relu}
  - conv2d: {filters: 5, kernel: 2, padding: same, strides: 2}
  - batch_norm: {}
  - max_pool: {pool: 2, padding: same}
  - flatten: {}
  - dropout: {rate: 0.25}
  - dense: {units: 7, activation: tanh}
  - batch_norm: {}
  - dense: {units: 3}
)";
  for (int64_t batch : {5, 8}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    Model cpu(YAML::Load(yaml), "m"), gpu(YAML::Load(yaml), "m");
    cpu.initialize(4);
    gpu.initialize(4);
    gpu.to_device(Device::kCuda);
    OptimizerConfig oc;
    oc.kind = OptimizerKind::kSgd;
    oc.lr = 0.05;
    auto ocpu = make_optimizer(oc, cpu.num_trainable());
    auto ogpu = make_optimizer(oc, gpu.num_trainable(), Device::kCuda);
    Tensor x = random_tensor({batch, 9, 9, 2}, 9, 0, 1);
    for (int64_t i = 0; i < x.size(); i += 3) x.data()[i] = 0;  // constant regions
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = int32_t(i % 3);
    Tensor labels_dev({batch}, Device::kCuda);
    auto* dl = reinterpret_cast<int32_t*>(labels_dev.data());
    copy_memory(dl, true, labels.data(), false, labels.size() * sizeof(int32_t));
    const Tensor xg = to(x, Device::kCuda);
    for (int step = 0; step < 2; ++step) {
      const StepContext ctx{Mode::kTrain, 1, 0, uint64_t(step)};
      SoftmaxCrossEntropy::compute(cpu.forward(x, ctx), labels.data(), &cpu.logits_grad(),
                                   1.0f / float(batch));
      cpu.backward();
      SoftmaxCrossEntropy::compute(gpu.forward(xg, ctx), dl, &gpu.logits_grad(),
                                   1.0f / float(batch));
      gpu.backward();
      for (size_t k = 0; k < cpu.params().size(); ++k) {  // per parameter: each its own scale
        const Param &c = cpu.params()[k], &g = gpu.params()[k];
        if (!c.grad) continue;
        expect_close_to_largest(Tensor::view(c.grad, c.spec.shape),
                                Tensor::view(g.grad, g.spec.shape, Device::kCuda), 1e-4,
                                "step " + std::to_string(step + 1) + " " +
                                    cpu.layers()[size_t(cpu.param_layer(k))]->name() + " " +
                                    c.spec.name);
      }
      ocpu->step(cpu.weights().data(), cpu.grads().data(), 0.05f);
      ogpu->step(gpu.weights().data(), gpu.grads().data(), 0.05f);
    }
    expect_close(cpu.state(), gpu.state(), 1e-4, "batch-norm statistics");
  }
}

}  // namespace
}  // namespace dpt::testing
