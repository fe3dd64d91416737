// The fast CIFAR recipe's initialisation and optimizer options: patch whitening, dirac kernels,
// BatchNorm gamma/beta at a scaled learning rate.
#include <gtest/gtest.h>

#include <cmath>

#include "core/philox.h"
#include "layer_harness.h"
#include "models/kernels/update_rules.h"
#include "models/model.h"
#include "models/whitening.h"
#include "trainer/config.h"
#include "trainer/optim/lookahead.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizers.h"

namespace dpt::testing {
namespace {

// Images whose pixels and channels are strongly correlated, as natural images are.
std::vector<uint8_t> correlated_images(int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<uint8_t> out;
  PhiloxStream rng(12, 0, 0, 3);
  for (int64_t i = 0; i < n; ++i) {
    const float base = 60 + 120 * rng.uniform();
    for (int64_t p = 0; p < h * w; ++p) {
      const float shared = 40 * rng.normal();
      for (int64_t k = 0; k < c; ++k)
        out.push_back(uint8_t(
            std::clamp(base + shared + 10.0f * float(k) + 12 * rng.normal(), 0.0f, 255.0f)));
    }
  }
  return out;
}

TEST(Whitening, FirstConvOutputsDecorrelatedUnitVarianceZeroMeanChannels) {
  const int64_t n = 300, h = 8, w = 8, c = 3;
  Model m(YAML::Load(
              "input: [8, 8, 3]\nlayers:\n"
              "  - conv2d: {filters: 24, kernel: 2, kernel_initializer: whiten, trainable: false}\n"
              "  - flatten: {}\n  - dense: {units: 2}\n"),
          "m");
  m.initialize(1);
  EXPECT_EQ(m.num_trainable(), 7 * 7 * 24 * 2 + 2);  // the conv is frozen state
  const auto images = correlated_images(n, h, w, c);
  EXPECT_NE(
      whiten_from_images(m, images.data(), n, h, w, c).find("from the 14700 2x2 patches of 300"),
      std::string::npos);
  Tensor x({n, h, w, c}), y({n, 7, 7, 24});
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = images[size_t(i)] / 255.0f;
  m.layers()[0]->forward(x, y, StepContext{});
  // Covariance of the 24 channels over all n * 49 positions.
  const int64_t rows = n * 49;
  std::vector<double> mean(24, 0.0), cov(24 * 24, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int a = 0; a < 24; ++a) mean[size_t(a)] += y.data()[r * 24 + a] / double(rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int a = 0; a < 24; ++a)
      for (int b = 0; b < 24; ++b)
        cov[size_t(a * 24 + b)] += (y.data()[r * 24 + a] - mean[size_t(a)]) *
                                   (y.data()[r * 24 + b] - mean[size_t(b)]) / double(rows);
  for (int a = 0; a < 12; ++a) {
    EXPECT_NEAR(mean[size_t(a)], 0.0, 1e-3) << a;  // centred by the bias
    // Unit variance, shrunk by lambda / (lambda + eps) where eigenvalues are small.
    EXPECT_GT(cov[size_t(a * 24 + a)], 0.97) << a;
    EXPECT_LT(cov[size_t(a * 24 + a)], 1.0 + 1e-6) << a;
    for (int b = 0; b < 12; ++b)
      if (b != a) EXPECT_NEAR(cov[size_t(a * 24 + b)], 0.0, 0.01) << a << "," << b;
    for (int64_t r = 0; r < rows; r += 97)  // the second half: the negated filters
      EXPECT_FLOAT_EQ(y.data()[r * 24 + a + 12], -y.data()[r * 24 + a]);
  }
}

TEST(Whitening, RefusesALaterLayerAndAnOddOrTooLargeFilterCount) {
  const auto images = correlated_images(4, 8, 8, 3);
  Model later(YAML::Load("input: [8, 8, 3]\nlayers:\n  - conv2d: {filters: 4, kernel: 1}\n"
                         "  - conv2d: {filters: 8, kernel: 2, kernel_initializer: whiten}\n"
                         "  - flatten: {}\n  - dense: {units: 2}\n"),
              "m");
  later.initialize(1);
  EXPECT_THROW(whiten_from_images(later, images.data(), 4, 8, 8, 3), Error);
  for (const char* f : {"23", "26"}) {
    Model bad(
        YAML::Load(
            std::string("input: [8, 8, 3]\nlayers:\n  - conv2d: {filters: ") + f +
            ", kernel: 2, kernel_initializer: whiten}\n  - flatten: {}\n  - dense: {units: 2}\n"),
        "m");
    bad.initialize(1);
    EXPECT_THROW(whiten_from_images(bad, images.data(), 4, 8, 8, 3), Error) << f;
  }
  Model plain(YAML::Load("input: [8, 8, 3]\nlayers:\n  - conv2d: {filters: 4, kernel: 2}\n"
                         "  - flatten: {}\n  - dense: {units: 2}\n"),
              "m");
  plain.initialize(1);
  EXPECT_EQ(whiten_from_images(plain, images.data(), 4, 8, 8, 3), "");  // nothing to do
}

TEST(Whitening, SymmetricEigenMatchesAKnownDecomposition) {
  double a[4] = {2, 1, 1, 2};  // eigenvalues 1 and 3, vectors (1, -1) and (1, 1) / sqrt 2
  double v[2];
  symmetric_eigen(a, v, 2);
  EXPECT_NEAR(v[0], 1.0, 1e-12);
  EXPECT_NEAR(v[1], 3.0, 1e-12);
  EXPECT_NEAR(std::fabs(a[0 * 2 + 1]), std::sqrt(0.5), 1e-12);  // component 0 of vector 1
  EXPECT_NEAR(a[0 * 2 + 1], a[1 * 2 + 1], 1e-12);               // (1, 1) direction
  EXPECT_NEAR(a[0 * 2 + 0], -a[1 * 2 + 0], 1e-12);              // (1, -1) direction
}

TEST(DiracInit, ConvStartsAsTheIdentityOnItsFirstChannels) {
  Model m(YAML::Load("input: [5, 5, 4]\nlayers:\n"
                     "  - conv2d: {filters: 6, kernel: 3, padding: same, use_bias: false, "
                     "kernel_initializer: dirac}\n"
                     "  - flatten: {}\n  - dense: {units: 2}\n"),
          "m");
  m.initialize(3);
  const Tensor x = random_tensor({2, 5, 5, 4}, 9);
  Tensor y({2, 5, 5, 6});
  m.layers()[0]->forward(x, y, StepContext{});
  int64_t differs = 0;
  for (int64_t p = 0; p < 2 * 25; ++p) {
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.data()[p * 6 + k], x.data()[p * 4 + k]) << p;
    differs += y.data()[p * 6 + 4] != x.data()[p * 4];
  }
  EXPECT_GT(differs, 40);  // filters 4 and 5 are random, within +-1/sqrt(36)
  const float* k = m.params()[0].host_value;
  for (int64_t i = 0; i < 3 * 3 * 4 * 6; ++i)
    if (i % 6 >= 4) EXPECT_LE(std::fabs(k[i]), 1.0f / 6.0f) << i;
}

TEST(NormLrScale, BatchNormParametersLearnFasterWithTheSameDecayPerStep) {
  Model m(YAML::Load("input: [6]\nlayers:\n  - dense: {units: 4}\n  - batch_norm: {}\n  - dense: "
                     "{units: 2}\n"),
          "m");
  m.initialize(1);
  OptimizerConfig oc;
  oc.kind = OptimizerKind::kSgd;
  oc.weight_decay = 0.5;
  oc.norm_lr_scale = 4;
  const auto ranges = optimizer_ranges(m, oc);
  ASSERT_EQ(ranges.size(), 1u);  // gamma and beta, adjacent
  EXPECT_EQ(ranges[0].end - ranges[0].begin, 8);
  EXPECT_TRUE(ranges[0].decayed);
  EXPECT_EQ(ranges[0].lr_scale, 4.0f);
  auto opt = make_optimizer(oc, m.num_trainable());
  opt->set_ranges(ranges);
  std::vector<float> w(m.weights().data(), m.weights().data() + m.num_trainable());
  const std::vector<float> before = w, ones(w.size(), 1.0f);
  opt->step(w.data(), ones.data(), 0.1f);
  for (size_t i = 0; i < w.size(); ++i) {
    const bool norm = int64_t(i) >= ranges[0].begin && int64_t(i) < ranges[0].end;
    const float expect = norm ? before[i] - 0.1f * 4 * (1 + 0.5f / 4 * before[i])
                              : before[i] - 0.1f * (1 + 0.5f * before[i]);
    EXPECT_NEAR(w[i], expect, 1e-6) << i;
  }
  // decay_bias_and_norm: false with a scale: the biases' range is undecayed at scale 1.
  oc.decay_bias_and_norm = false;
  const auto both = optimizer_ranges(m, oc);
  ASSERT_EQ(both.size(), 3u);  // dense bias | gamma+beta | dense_1 bias
  EXPECT_EQ(both[0].lr_scale, 1.0f);
  EXPECT_FALSE(both[1].decayed);
  EXPECT_EQ(both[1].lr_scale, 4.0f);
  oc.norm_lr_scale = 1;
  oc.decay_bias_and_norm = true;
  EXPECT_TRUE(optimizer_ranges(m, oc).empty());  // the plain case: one update, no ranges
}

TEST(Lookahead, SyncsEveryKStepsFromTheStartEpochWithARampedDecay) {
  LookaheadConfig c;
  c.on = true;
  c.every_steps = 5;
  c.decay = 0.8;
  c.start_epoch = 2;
  c.ramp_power = 2;
  const int64_t spe = 12, epochs = 5;  // T = 60; the start is after step 24
  for (int64_t t = 1; t <= 24; ++t) EXPECT_EQ(lookahead_rho(c, t, spe, epochs), -1) << t;
  EXPECT_FALSE(lookahead_started(c, 24, spe));
  EXPECT_EQ(lookahead_rho(c, 25, spe, epochs), 0);  // the first: the slow weights start as a copy
  EXPECT_TRUE(lookahead_started(c, 25, spe));
  EXPECT_EQ(lookahead_rho(c, 26, spe, epochs), -1);
  EXPECT_DOUBLE_EQ(lookahead_rho(c, 30, spe, epochs), 0.8 * 0.25);  // (30/60)^2
  EXPECT_DOUBLE_EQ(lookahead_rho(c, 60, spe, epochs), 0.8);
  c.on = false;
  EXPECT_EQ(lookahead_rho(c, 30, spe, epochs), -1);
  EXPECT_FALSE(lookahead_started(c, 60, spe));
  // The sync itself: slow = rho slow + (1 - rho) w, then w = slow.
  float w[2] = {1.0f, -2.0f}, slow[2] = {3.0f, 2.0f};
  lookahead_sync_cpu(w, slow, 2, 0.25f);
  EXPECT_FLOAT_EQ(slow[0], 0.25f * 3 + 0.75f * 1);
  EXPECT_FLOAT_EQ(slow[1], 0.25f * 2 + 0.75f * -2);
  EXPECT_EQ(w[0], slow[0]);
  EXPECT_EQ(w[1], slow[1]);
}

TEST(FastRecipeConfig, NewKeysParseAndBadValuesAreRefused) {
  const std::string base = "name: r\ndata: {dataset: mnist}\n";
  const Config c = parse_config(YAML::Load(
      "name: r\nmodel: {input: [4], layers: [{dense: {units: 2}}, {rescaling: {scale: 0.5}}]}\n"
      "train: {optimizer: {sgd: {lr: 0.1, norm_lr_scale: 64}}, lookahead: {start_epoch: 3}}\n"
      "data: {dataset: cifar10, augment: {fill: reflect}}\neval: {tta: flip_translate}\n"));
  EXPECT_DOUBLE_EQ(c.train.optimizer.norm_lr_scale, 64);
  EXPECT_TRUE(c.train.lookahead.on);
  EXPECT_EQ(c.train.lookahead.start_epoch, 3);
  EXPECT_EQ(c.train.lookahead.every_steps, 5);
  EXPECT_TRUE(c.data.reflect_fill);
  EXPECT_EQ(c.eval.tta, Tta::kFlipTranslate);
  EXPECT_FALSE(
      parse_config(YAML::Load(base + "model: {input: [4], layers: [{dense: {units: 2}}]}\n"))
          .train.lookahead.on);
  for (const char* bad :
       {"train: {lookahead: {every_steps: 0}}", "train: {lookahead: {decay: 1.5}}",
        "train: {lookahead: {rho: 0.5}}", "data: {dataset: mnist, augment: {fill: wrap}}"}) {
    const std::string text =
        std::string(bad).rfind("data", 0) == 0 ? std::string("name: r\n") : base;
    EXPECT_THROW(parse_config(YAML::Load(
                     text + "model: {input: [4], layers: [{dense: {units: 2}}]}\n" + bad + "\n")),
                 Error)
        << bad;
  }
  EXPECT_THROW(parse_config(YAML::Load(base + "model: {input: [4], layers: [{dense: {units: 2}}]}\n"
                                              "train: {optimizer: {adam: {norm_lr_scale: 2}}}\n")),
               Error);  // sgd only
  EXPECT_THROW(
      Model(YAML::Load("input: [4]\nlayers: [{dense: {units: 2}}, {rescaling: {scale: 0}}]\n"),
            "m"),
      Error);
  EXPECT_THROW(
      Model(YAML::Load("input: [4]\nlayers: [{dense: {units: 2}}, {rescaling: {factor: 2}}]\n"),
            "m"),
      Error);  // unknown key
  for (const char* layer : {"conv2d: {filters: 2, kernel: 1, activation: gelu}",
                            "dense: {units: 2, activation: gelu}"}) {
    try {
      Model(YAML::Load(
                std::string("input: [3, 3, 1]\nlayers: [{flatten: {}}, {dense: {units: 2}}]\n")),
            "m");
      Model(YAML::Load(std::string("input: [3, 3, 1]\nlayers: [{") + layer +
                       "}, {flatten: {}}, {dense: {units: 2}}]\n"),
            "m");
      ADD_FAILURE() << layer << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("add '- gelu: {}' after this one"), std::string::npos)
          << e.what();
    }
  }
  Model frozen_bn(
      YAML::Load("input: [4]\nlayers: [{batch_norm: {scale: false}}, {dense: {units: 2}}]\n"), "m");
  EXPECT_EQ(frozen_bn.num_trainable(), 4 + 4 * 2 + 2);  // beta and the dense layer
}

}  // namespace
}  // namespace dpt::testing
