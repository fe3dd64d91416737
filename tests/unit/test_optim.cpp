// Optimizers against their formulas (Keras' Adam, SGD with momentum/Nesterov, AdamW) and LR
// schedules.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizers.h"

namespace dpt {
namespace {

TEST(Optimizers, AdamFollowsKerasFormula) {
  OptimizerConfig c;  // Keras defaults: lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7
  auto opt = make_optimizer(c, 2);
  float w[2] = {1.0f, -2.0f};
  double wd[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  for (int t = 1; t <= 5; ++t) {
    const float g[2] = {0.5f * t, -0.25f};
    opt->step(w, g, 0.01f);
    const double alpha = 0.01 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    for (int i = 0; i < 2; ++i) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      wd[i] -= alpha * m[i] / (std::sqrt(v[i]) + 1e-7);
      EXPECT_NEAR(w[i], wd[i], 1e-5) << "t=" << t;
    }
  }
  EXPECT_EQ(opt->iterations(), 5);
}

TEST(Optimizers, SgdMomentumAndNesterov) {
  OptimizerConfig c;
  c.kind = OptimizerKind::kSgd;
  c.momentum = 0.9;
  for (bool nesterov : {false, true}) {
    c.nesterov = nesterov;
    auto opt = make_optimizer(c, 1);
    float w = 1.0f;
    double wd = 1.0, vel = 0;
    for (int t = 0; t < 4; ++t) {
      const float g = 0.3f + 0.1f * float(t);
      opt->step(&w, &g, 0.1f);
      vel = 0.9 * vel - 0.1 * g;
      wd += nesterov ? 0.9 * vel - 0.1 * g : vel;
      EXPECT_NEAR(w, wd, 1e-6);
    }
  }
}

TEST(Optimizers, WeightDecayCoupledForSgdDecoupledForAdamW) {
  OptimizerConfig s;
  s.kind = OptimizerKind::kSgd;
  s.weight_decay = 0.1;
  auto sgd = make_optimizer(s, 1);
  float w = 2.0f, g = 0.0f;
  sgd->step(&w, &g, 0.5f);
  EXPECT_NEAR(w, 2.0 - 0.5 * 0.1 * 2.0, 1e-6);
  OptimizerConfig a;
  a.kind = OptimizerKind::kAdamW;
  a.weight_decay = 0.1;
  auto adamw = make_optimizer(a, 1);
  w = 2.0f;
  adamw->step(&w, &g, 0.5f);  // zero gradient: only the decoupled decay moves w
  EXPECT_NEAR(w, 2.0 - 0.5 * 0.1 * 2.0, 1e-6);
}

TEST(Schedules, ConstantStepCosineWarmup) {
  ScheduleConfig s;
  EXPECT_DOUBLE_EQ(learning_rate(s, 0.1, 500, 100, 10), 0.1);
  s.kind = ScheduleKind::kStep;
  s.step_epochs = 2;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate(s, 0.1, 199, 100, 10), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 0.1, 200, 100, 10), 0.05);
  EXPECT_DOUBLE_EQ(learning_rate(s, 0.1, 450, 100, 10), 0.025);
  s = ScheduleConfig{};
  s.kind = ScheduleKind::kCosine;
  EXPECT_NEAR(learning_rate(s, 0.1, 0, 100, 10), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate(s, 0.1, 500, 100, 10), 0.05, 1e-12);
  EXPECT_NEAR(learning_rate(s, 0.1, 1000, 100, 10), 0.0, 1e-12);
  s.warmup_epochs = 1;
  EXPECT_NEAR(learning_rate(s, 0.1, 0, 100, 10), 0.001, 1e-12);
  EXPECT_NEAR(learning_rate(s, 0.1, 49, 100, 10), 0.05, 1e-12);
  EXPECT_NEAR(learning_rate(s, 0.1, 100, 100, 10), 0.1, 1e-12);
}

}  // namespace
}  // namespace dpt
