// Numerical gradient checks (central differences in double) for every layer and the loss.
#include "layer_harness.h"
#include "models/layers/softmax_cross_entropy.h"

namespace dpt::testing {
namespace {

const StepContext kTrain{Mode::kTrain, 3, 0, 5};

TEST(Gradients, Conv2DValidRelu) {
  LayerUnderTest t("conv2d: {filters: 4, kernel: 3, activation: relu}", {6, 6, 3});
  check_gradients(t, 2, kTrain);
}

TEST(Gradients, Conv2DSameStride2Tanh) {
  LayerUnderTest t(
      "conv2d: {filters: 5, kernel: [3, 2], strides: 2, padding: same, activation: tanh}",
      {7, 6, 2});
  check_gradients(t, 2, kTrain);
}

TEST(Gradients, Conv2DNoBiasSigmoid) {
  LayerUnderTest t("conv2d: {filters: 3, kernel: 2, use_bias: false, activation: sigmoid}",
                   {5, 5, 2});
  check_gradients(t, 3, kTrain);
}

TEST(Gradients, DenseLinear) {
  LayerUnderTest t("dense: {units: 7}", {12});
  check_gradients(t, 4, kTrain);
}

TEST(Gradients, DenseRelu) {
  LayerUnderTest t("dense: {units: 6, activation: relu}", {9});
  check_gradients(t, 3, kTrain);
}

TEST(Gradients, DenseSoftmax) {
  LayerUnderTest t("dense: {units: 5, activation: softmax}", {8});
  check_gradients(t, 3, kTrain);
}

TEST(Gradients, MaxPool) {
  LayerUnderTest t("max_pool: {pool: 2}", {6, 6, 3});
  check_gradients(t, 2, kTrain, 1e-4);
}

TEST(Gradients, MaxPoolSameStride1) {
  LayerUnderTest t("max_pool: {pool: 3, strides: 1, padding: same}", {5, 5, 2});
  check_gradients(t, 2, kTrain, 1e-4);
}

TEST(Gradients, AveragePoolSame) {
  LayerUnderTest t("avg_pool: {pool: 2, padding: same}", {5, 5, 3});
  check_gradients(t, 2, kTrain);
}

TEST(Gradients, GlobalAveragePool) {
  LayerUnderTest t("global_avg_pool: {}", {4, 5, 3});
  check_gradients(t, 2, kTrain);
}

TEST(Gradients, BatchNormTrainingSpatial) {
  LayerUnderTest t("batch_norm: {}", {3, 3, 4});
  check_gradients(t, 4, kTrain, 1e-3, 3e-2, 3e-3);
}

TEST(Gradients, BatchNormTrainingFlat) {
  LayerUnderTest t("batch_norm: {}", {6});
  check_gradients(t, 8, kTrain, 1e-3, 3e-2, 3e-3);
}

TEST(Gradients, BatchNormWithoutScale) {
  LayerUnderTest t("batch_norm: {scale: false}", {3, 3, 4});
  EXPECT_EQ(t.params[0].spec.name, "gamma");
  EXPECT_FALSE(t.params[0].spec.trainable);  // frozen: no gamma gradient is checked or wanted
  check_gradients(t, 4, kTrain, 1e-3, 3e-2, 3e-3);
}

TEST(Gradients, Rescaling) {
  LayerUnderTest t("rescaling: {scale: -0.25, offset: 0.5}", {3, 4});
  check_gradients(t, 2, kTrain);
}

TEST(Gradients, FrozenConv2DPassesGradientToItsInputOnly) {
  LayerUnderTest t("conv2d: {filters: 3, kernel: 2, trainable: false}", {4, 4, 2});
  for (const auto& p : t.params) EXPECT_FALSE(p.spec.trainable) << p.spec.name;
  check_gradients(t, 2, kTrain);  // dx against central differences; no weight gradient
}

TEST(Gradients, Dropout) {
  LayerUnderTest t("dropout: {rate: 0.4}", {20});
  check_gradients(t, 3, kTrain);
}

TEST(Gradients, Activations) {
  for (const char* a : {"relu: {}", "sigmoid: {}", "tanh: {}", "softmax: {}", "gelu: {}"}) {
    SCOPED_TRACE(a);
    LayerUnderTest t(a, {10});
    check_gradients(t, 3, kTrain);
  }
}

TEST(Gradients, SoftmaxCrossEntropy) {
  const int64_t n = 4, c = 6;
  Tensor logits = random_tensor({n, c}, 3, -3.0f, 3.0f);
  const std::vector<int32_t> labels{0, 5, 2, 2};
  Tensor grad({n, c});
  SoftmaxCrossEntropy::compute(logits, labels.data(), &grad, 1.0f / float(n));
  for (int64_t i = 0; i < logits.size(); ++i) {
    const float keep = logits.data()[i];
    const double eps = 1e-3;
    logits.data()[i] = keep + float(eps);
    const double up = SoftmaxCrossEntropy::compute(logits, labels.data(), nullptr, 1).loss_sum / n;
    logits.data()[i] = keep - float(eps);
    const double down =
        SoftmaxCrossEntropy::compute(logits, labels.data(), nullptr, 1).loss_sum / n;
    logits.data()[i] = keep;
    EXPECT_NEAR(grad.data()[i], (up - down) / (2 * eps), 1e-4) << "logit " << i;
  }
}

}  // namespace
}  // namespace dpt::testing
