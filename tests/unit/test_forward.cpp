// Forward results of conv, pooling, dense and batch norm against small cases computed here
// directly.
#include "layer_harness.h"
#include "models/layers/batch_norm.h"

namespace dpt::testing {
namespace {

const StepContext kInfer{Mode::kInfer, 0, 0, 0};

// Direct NHWC convolution with TF 'same'/'valid' padding and an HWIO kernel.
std::vector<double> naive_conv(const Tensor& x, const float* k, const float* b, int64_t kh,
                               int64_t kw, int64_t cout, int64_t s, bool same, Shape* out) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), cin = x.dim(3);
  const int64_t oh = same ? (h + s - 1) / s : (h - kh) / s + 1;
  const int64_t ow = same ? (w + s - 1) / s : (w - kw) / s + 1;
  const int64_t pt = same ? std::max<int64_t>((oh - 1) * s + kh - h, 0) / 2 : 0;
  const int64_t pl = same ? std::max<int64_t>((ow - 1) * s + kw - w, 0) / 2 : 0;
  *out = {n, oh, ow, cout};
  std::vector<double> y(size_t(n * oh * ow * cout));
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t o = 0; o < cout; ++o) {
          double acc = b ? b[o] : 0.0;
          for (int64_t di = 0; di < kh; ++di)
            for (int64_t dj = 0; dj < kw; ++dj) {
              const int64_t yi = i * s + di - pt, xj = j * s + dj - pl;
              if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue;
              for (int64_t c = 0; c < cin; ++c)
                acc += double(x.data()[((b0 * h + yi) * w + xj) * cin + c]) *
                       k[((di * kw + dj) * cin + c) * cout + o];
            }
          y[size_t(((b0 * oh + i) * ow + j) * cout + o)] = acc;
        }
  return y;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(size_t(got.size()), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got.data()[i], want[i], tol) << "at " << i;
}

TEST(Forward, Conv2DValidMatchesDirectSum) {
  LayerUnderTest t("conv2d: {filters: 4, kernel: 3}", {6, 5, 2});
  const Tensor x = random_tensor({2, 6, 5, 2}, 1);
  Tensor y(with_batch(2, t.out));
  t.layer->forward(x, y, kInfer);
  Shape s;
  const auto want = naive_conv(x, t.values[0].data(), t.values[1].data(), 3, 3, 4, 1, false, &s);
  EXPECT_EQ(y.shape(), s);
  expect_close(y, want, 1e-4);
}

TEST(Forward, Conv2DSameStride2Relu) {
  LayerUnderTest t("conv2d: {filters: 3, kernel: 2, strides: 2, padding: same, activation: relu}",
                   {5, 5, 3});
  const Tensor x = random_tensor({1, 5, 5, 3}, 2);
  Tensor y(with_batch(1, t.out));
  t.layer->forward(x, y, kInfer);
  Shape s;
  auto want = naive_conv(x, t.values[0].data(), t.values[1].data(), 2, 2, 3, 2, true, &s);
  for (auto& v : want) v = std::max(v, 0.0);
  EXPECT_EQ(y.shape(), s);
  EXPECT_EQ(s, (Shape{1, 3, 3, 3}));
  expect_close(y, want, 1e-4);
}

TEST(Forward, MaxAndAveragePoolingHandComputed) {
  // One 4x4 channel: rows 0..15.
  Tensor x({1, 4, 4, 1});
  for (int i = 0; i < 16; ++i) x.data()[i] = float(i);
  LayerUnderTest mp("max_pool: {pool: 2}", {4, 4, 1});
  Tensor y({1, 2, 2, 1});
  mp.layer->forward(x, y, kInfer);
  expect_close(y, {5, 7, 13, 15}, 0);
  LayerUnderTest ap("avg_pool: {pool: 2}", {4, 4, 1});
  ap.layer->forward(x, y, kInfer);
  expect_close(y, {2.5, 4.5, 10.5, 12.5}, 1e-6);
  // 'same' 3x3 average at stride 3 on 4x4: TF pads one row/column on each side, and the
  // padded windows divide by the real count (4), not by 9, as Keras does.
  LayerUnderTest aps("avg_pool: {pool: 3, padding: same}", {4, 4, 1});
  Tensor y2({1, 2, 2, 1});
  aps.layer->forward(x, y2, kInfer);
  expect_close(y2, {2.5, 4.5, 10.5, 12.5}, 1e-5);
  LayerUnderTest gp("global_avg_pool: {}", {4, 4, 1});
  Tensor y3({1, 1});
  gp.layer->forward(x, y3, kInfer);
  expect_close(y3, {7.5}, 1e-6);
}

TEST(Forward, DenseMatchesMatrixProduct) {
  LayerUnderTest t("dense: {units: 3, activation: sigmoid}", {4});
  const Tensor x = random_tensor({2, 4}, 4);
  Tensor y({2, 3});
  t.layer->forward(x, y, kInfer);
  std::vector<double> want;
  for (int n = 0; n < 2; ++n)
    for (int u = 0; u < 3; ++u) {
      double acc = t.values[1][size_t(u)];
      for (int k = 0; k < 4; ++k)
        acc += double(x.data()[n * 4 + k]) * t.values[0][size_t(k * 3 + u)];
      want.push_back(1.0 / (1.0 + std::exp(-acc)));
    }
  expect_close(y, want, 1e-5);
}

TEST(Forward, BatchNormTrainingAndInference) {
  LayerUnderTest t("batch_norm: {momentum: 0.9, epsilon: 0.001}", {2, 1, 2});
  const Tensor x = random_tensor({3, 2, 1, 2}, 5);
  const std::vector<float> mm0 = t.values[2], mv0 = t.values[3];
  Tensor y(x.shape());
  t.layer->forward(x, y, StepContext{Mode::kTrain, 0, 0, 0});
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int i = 0; i < 6; ++i) mean += x.data()[i * 2 + c] / 6.0;
    for (int i = 0; i < 6; ++i) var += std::pow(x.data()[i * 2 + c] - mean, 2) / 6.0;
    for (int i = 0; i < 6; ++i) {
      const double want =
          t.values[0][size_t(c)] * (x.data()[i * 2 + c] - mean) / std::sqrt(var + 1e-3) +
          t.values[1][size_t(c)];
      EXPECT_NEAR(y.data()[i * 2 + c], want, 1e-4);
    }
    // Keras' moving average update with the biased batch variance.
    EXPECT_NEAR(t.values[2][size_t(c)], 0.9 * mm0[size_t(c)] + 0.1 * mean, 1e-5);
    EXPECT_NEAR(t.values[3][size_t(c)], 0.9 * mv0[size_t(c)] + 0.1 * var, 1e-5);
  }
  t.layer->forward(x, y, kInfer);  // inference uses the moving statistics
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 2; ++c) {
      const double want = t.values[0][size_t(c)] * (x.data()[i * 2 + c] - t.values[2][size_t(c)]) /
                              std::sqrt(t.values[3][size_t(c)] + 1e-3) +
                          t.values[1][size_t(c)];
      EXPECT_NEAR(y.data()[i * 2 + c], want, 1e-4);
    }
}

TEST(Forward, DropoutKeepsExpectationAndIsIdentityInInference) {
  LayerUnderTest t("dropout: {rate: 0.25}", {10000});
  Tensor x({1, 10000});
  std::fill(x.data(), x.data() + x.size(), 1.0f);
  Tensor y(x.shape()), y2(x.shape());
  t.layer->forward(x, y, StepContext{Mode::kTrain, 9, 0, 1});
  int zeros = 0;
  double sum = 0;
  for (int64_t i = 0; i < y.size(); ++i) {
    zeros += y.data()[i] == 0.0f;
    sum += y.data()[i];
    if (y.data()[i] != 0.0f) {
      EXPECT_FLOAT_EQ(y.data()[i], 1.0f / 0.75f);
    }
  }
  EXPECT_NEAR(zeros / 10000.0, 0.25, 0.02);
  EXPECT_NEAR(sum / 10000.0, 1.0, 0.03);
  // Same (seed, rank, step) -> same mask; another rank or step -> another mask.
  t.layer->forward(x, y2, StepContext{Mode::kTrain, 9, 0, 1});
  EXPECT_TRUE(std::equal(y.data(), y.data() + y.size(), y2.data()));
  t.layer->forward(x, y2, StepContext{Mode::kTrain, 9, 1, 1});
  EXPECT_FALSE(std::equal(y.data(), y.data() + y.size(), y2.data()));
  t.layer->forward(x, y2, kInfer);
  for (int64_t i = 0; i < y2.size(); ++i) ASSERT_EQ(y2.data()[i], 1.0f);
}

}  // namespace
}  // namespace dpt::testing
