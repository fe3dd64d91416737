// The fast-training features: label smoothing, the one-cycle schedule, weight decay kept off
// biases and BatchNorm, and their config keys.
#include <gtest/gtest.h>

#include <cmath>

#include "comm/local_communicator.h"
#include "core/philox.h"
#include "data/shards.h"
#include "layer_harness.h"
#include "models/layers/softmax_cross_entropy.h"
#include "models/model.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizers.h"

namespace dpt::testing {
namespace {

TEST(LabelSmoothing, LossAndGradientMatchSmoothedTargets) {
  const Tensor logits = random_tensor({5, 4}, 3, -2, 2);
  const std::vector<int32_t> labels{0, 3, 1, 1, 2};
  const float s = 0.2f;
  Tensor grad({5, 4});
  const LossStats st = SoftmaxCrossEntropy::compute(logits, labels.data(), &grad, 1.0f, s);
  double expect = 0;
  for (int64_t i = 0; i < 5; ++i) {
    const float* z = logits.data() + i * 4;
    double sum = 0;
    for (int j = 0; j < 4; ++j) sum += std::exp(double(z[j]));
    for (int j = 0; j < 4; ++j) {
      const double t = (j == labels[size_t(i)] ? 1 - s : 0) + s / 4.0;
      const double p = std::exp(double(z[j])) / sum;
      expect -= t * std::log(p);
      EXPECT_NEAR(grad.data()[i * 4 + j], p - t, 1e-6) << i << "," << j;
    }
  }
  EXPECT_NEAR(st.loss_sum, expect, 1e-6);
  // s = 0 is the plain loss, to the bit.
  Tensor g0({5, 4}), g1({5, 4});
  const LossStats a = SoftmaxCrossEntropy::compute(logits, labels.data(), &g0, 1.0f);
  const LossStats b = SoftmaxCrossEntropy::compute(logits, labels.data(), &g1, 1.0f, 0.0f);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(g0.data()[i], g1.data()[i]);
}

TEST(OneCycle, RisesLinearlyToThePeakAndFallsToTheFloor) {
  ScheduleConfig s;
  s.kind = ScheduleKind::kOneCycle;
  s.pct_start = 0.25;
  s.div_factor = 10;
  s.final_div_factor = 100;
  const int64_t spe = 10, epochs = 4;  // 40 steps: peak at step 9.75, last step 39
  EXPECT_NEAR(learning_rate(s, 1.0, 0, spe, epochs), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate(s, 1.0, 39, spe, epochs), 0.001, 1e-12);
  double peak = 0;
  int64_t at = 0;
  for (int64_t t = 0; t < 40; ++t)
    if (learning_rate(s, 1.0, t, spe, epochs) > peak)
      peak = learning_rate(s, 1.0, at = t, spe, epochs);
  EXPECT_EQ(at, 10);
  EXPECT_GT(peak, 0.95);
  for (int64_t t = 1; t < 40; ++t) {
    const double a = learning_rate(s, 1.0, t - 1, spe, epochs),
                 b = learning_rate(s, 1.0, t, spe, epochs);
    if (t <= 9) {
      EXPECT_GT(b, a) << t;
    }
    if (t >= 11) {
      EXPECT_LT(b, a) << t;
    }
  }
}

TEST(WeightDecay, CanBeKeptOffBiasesAndBatchNorm) {
  Model m(YAML::Load("input: [6]\nlayers:\n  - dense: {units: 4}\n  - batch_norm: {}\n  - dense: "
                     "{units: 2}\n"),
          "m");
  m.initialize(1);
  OptimizerConfig oc;
  oc.kind = OptimizerKind::kSgd;
  oc.weight_decay = 0.5;
  oc.decay_bias_and_norm = false;
  const auto ranges = optimizer_ranges(m, oc);
  // dense/bias (4), then BN gamma+beta (8) right after it, then dense_1/bias (2).
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].end - ranges[0].begin, 4 + 8);
  EXPECT_EQ(ranges[1].end - ranges[1].begin, 2);
  for (const auto& r : ranges) EXPECT_FALSE(r.decayed);
  auto opt = make_optimizer(oc, m.num_trainable());
  opt->set_ranges(ranges);
  std::vector<float> w(m.weights().data(), m.weights().data() + m.num_trainable());
  const std::vector<float> zero(w.size(), 0.0f), before = w;
  opt->step(w.data(), zero.data(), 0.1f);  // zero gradient: only decay moves anything
  for (size_t i = 0; i < w.size(); ++i) {
    bool kept_off = false;
    for (const auto& r : ranges) kept_off |= int64_t(i) >= r.begin && int64_t(i) < r.end;
    if (kept_off) {
      EXPECT_EQ(w[i], before[i]) << i;
    } else if (before[i] != 0) {
      EXPECT_NEAR(w[i], before[i] * (1 - 0.1f * 0.5f), 1e-7) << i;
    }
  }
}

TEST(RecipeConfig, KeysParseAndBadValuesAreRefused) {
  const std::string base =
      "name: r\ndata: {dataset: mnist}\nmodel: {input: [4], layers: [{dense: {units: 2}}]}\n";
  const Config c = parse_config(YAML::Load(
      base +
      "train: {label_smoothing: 0.1, lr_schedule: {onecycle: {pct_start: 0.3}},"
      " optimizer: {sgd: {lr: 0.1, momentum: 0.9, nesterov: true, decay_bias_and_norm: false}}}\n"
      "eval: {tta: flip, test_every_epoch: true}\n"));
  EXPECT_DOUBLE_EQ(c.train.label_smoothing, 0.1);
  EXPECT_EQ(c.train.schedule.kind, ScheduleKind::kOneCycle);
  EXPECT_DOUBLE_EQ(c.train.schedule.pct_start, 0.3);
  EXPECT_FALSE(c.train.optimizer.decay_bias_and_norm);
  EXPECT_EQ(c.eval.tta, Tta::kFlip);
  EXPECT_TRUE(c.eval.test_every_epoch);
  EXPECT_THROW(parse_config(YAML::Load(base + "train: {label_smoothing: 1.5}\n")), Error);
  EXPECT_THROW(parse_config(YAML::Load(base + "eval: {tta: rotate}\n")), Error);
  EXPECT_THROW(
      parse_config(YAML::Load(
          base + "train: {lr_schedule: {onecycle: {pct_start: 0.3, warmup_epochs: 1}}}\n")),
      Error);
}

// n random 4x5 one-channel images of 3 classes (labels i % 3), for the TTA tests.
ShardData tiny_images(int64_t n, uint64_t seed) {
  ShardData d;
  d.dataset = "cifar10";
  d.height = 4;
  d.width = 5;
  d.channels = 1;
  d.classes = 3;
  d.n = n;
  PhiloxStream rng(seed, 0, 0, 1);
  for (int64_t i = 0; i < d.n * 20; ++i) d.images.push_back(uint8_t(rng.below(256)));
  for (int64_t i = 0; i < d.n; ++i) d.labels.push_back(uint8_t(i % 3));
  return d;
}

TEST(FlipTta, AveragesEachImagesSoftmaxWithItsMirror) {
  Model m(YAML::Load("input: [4, 5, 1]\nlayers:\n  - conv2d: {filters: 2, kernel: 2}\n"
                     "  - flatten: {}\n  - dense: {units: 3}\n"),
          "m");
  m.initialize(2);
  const ShardData d = tiny_images(7, 4);
  const std::vector<int64_t> idx{0, 1, 2, 3, 4, 5, 6};
  LocalCommunicator local;
  std::vector<float> probs;
  const EvalResult r = evaluate(m, d, idx, 4, local, nullptr, &probs, Tta::kFlip);
  // By hand: each image and its mirror (columns reversed), softmax averaged.
  double loss = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    Tensor a({1, 4, 5, 1}), b({1, 4, 5, 1});
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 5; ++x) {
        a.data()[y * 5 + x] = d.images[size_t(i * 20 + y * 5 + x)] / 255.0f;
        b.data()[y * 5 + x] = d.images[size_t(i * 20 + y * 5 + 4 - x)] / 255.0f;
      }
    std::vector<double> pa(3), pb(3);
    for (auto [t, p] : {std::pair{&a, &pa}, {&b, &pb}}) {
      const Tensor& z = m.forward(*t, StepContext{});
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += std::exp(double(z.data()[c]));
      for (int c = 0; c < 3; ++c) (*p)[size_t(c)] = std::exp(double(z.data()[c])) / sum;
    }
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(probs[size_t(i * 3 + c)], 0.5 * (pa[size_t(c)] + pb[size_t(c)]), 1e-5);
    loss -= std::log(0.5 * (pa[size_t(d.labels[size_t(i)])] + pb[size_t(d.labels[size_t(i)])]));
  }
  EXPECT_NEAR(r.loss, loss / 7, 1e-5);
  EXPECT_EQ(r.count, 7);
}

TEST(FlipTranslateTta, WeighsThePlainPairAHalfAndEachShiftedPairAQuarter) {
  Model m(YAML::Load("input: [4, 5, 1]\nlayers:\n  - conv2d: {filters: 2, kernel: 2}\n"
                     "  - flatten: {}\n  - dense: {units: 3}\n"),
          "m");
  m.initialize(5);
  const ShardData d = tiny_images(6, 8);
  const std::vector<int64_t> idx{0, 1, 2, 3, 4, 5};
  LocalCommunicator local;
  std::vector<float> probs;
  std::vector<int32_t> guesses;
  const EvalResult r = evaluate(m, d, idx, 4, local, &guesses, &probs, Tta::kFlipTranslate);
  struct View {
    bool mirror;
    int64_t shift;
    double weight;
  };
  const View views[] = {{false, 0, 0.25},  {true, 0, 0.25},   {false, -1, 0.125},
                        {true, -1, 0.125}, {false, 1, 0.125}, {true, 1, 0.125}};
  int correct = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    std::vector<double> mean(3, 0.0);
    for (const View& v : views) {
      Tensor a({1, 4, 5, 1});
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 5; ++x) {  // output (y, x) reads (y + s, mirrored x + s), reflected
          auto reflect = [](int64_t v, int64_t size) {
            return v < 0 ? -v : v >= size ? 2 * size - 2 - v : v;
          };
          const int64_t sy = reflect(y + v.shift, 4),
                        sx = reflect((v.mirror ? 4 - x : x) + v.shift, 5);
          a.data()[y * 5 + x] = d.images[size_t(i * 20 + sy * 5 + sx)] / 255.0f;
        }
      const Tensor& z = m.forward(a, StepContext{});
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += std::exp(double(z.data()[c]));
      for (int c = 0; c < 3; ++c) mean[size_t(c)] += v.weight * std::exp(double(z.data()[c])) / sum;
    }
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(probs[size_t(i * 3 + c)], mean[size_t(c)], 1e-5);
    const int64_t guess = std::max_element(mean.begin(), mean.end()) - mean.begin();
    EXPECT_EQ(guesses[size_t(i)], guess);
    correct += guess == d.labels[size_t(i)];
  }
  EXPECT_NEAR(r.accuracy, correct / 6.0, 1e-12);
}

}  // namespace
}  // namespace dpt::testing
