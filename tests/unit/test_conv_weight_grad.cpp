// The im2col + SGEMM weight gradient of a convolution (Note [own conv weight gradient]) against a
// float64 reference and against oneDNN's kernel, through the Conv2D layer, and its CPU choice.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "layer_harness.h"
#include "models/kernels/cpu/conv_weight_grad.h"
#include "models/kernels/precision_support.h"

namespace dpt::testing {
namespace {

using namespace cpu;

struct Case {
  int64_t n, h, w, c, f, kh, kw, s;
  bool same, bias;
};

// dW[kh][kw][c][f] = sum over (n, oy, ox) of x[n][iy][ix][c] * dy[n][oy][ox][f], in double.
void reference(const Case& t, const Window2D& g, const std::vector<float>& x,
               const std::vector<float>& dy, std::vector<double>& dw, std::vector<double>& db) {
  dw.assign(size_t(t.kh * t.kw * t.c * t.f), 0.0);
  db.assign(size_t(t.f), 0.0);
  for (int64_t n = 0; n < t.n; ++n)
    for (int64_t oy = 0; oy < g.h.out; ++oy)
      for (int64_t ox = 0; ox < g.w.out; ++ox) {
        const float* d = dy.data() + ((n * g.h.out + oy) * g.w.out + ox) * t.f;
        for (int64_t f = 0; f < t.f; ++f) db[size_t(f)] += d[f];
        for (int64_t i = 0; i < t.kh; ++i)
          for (int64_t j = 0; j < t.kw; ++j) {
            const int64_t iy = oy * t.s - g.h.pad_lo + i, ix = ox * t.s - g.w.pad_lo + j;
            if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
            const float* in = x.data() + ((n * t.h + iy) * t.w + ix) * t.c;
            for (int64_t c = 0; c < t.c; ++c)
              for (int64_t f = 0; f < t.f; ++f)
                dw[size_t(((i * t.kw + j) * t.c + c) * t.f + f)] += double(in[c]) * d[f];
          }
      }
}

std::vector<float> values(int64_t count, uint64_t seed) {
  const Tensor t = random_tensor({count}, seed);
  return std::vector<float>(t.data(), t.data() + count);
}

// |a - b| within float accumulation error of sums of products of values in [-1, 1].
void expect_close(const std::vector<float>& got, const std::vector<double>& want, int64_t terms,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  const double tol = 1e-6 * double(terms);
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::fabs(double(got[i]) - want[i]) > tol && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs " << want[i];
}

// Note [own kernels below AVX-512]: the own kernel below AVX-512 unless the variable says
// (first in this file, before any test sets the choice).
TEST(ConvWeightGrad, IsChosenBelowAvx512) {
  if (std::getenv("DPT_CONV_WEIGHT_GRAD")) GTEST_SKIP() << "DPT_CONV_WEIGHT_GRAD is set";
  const std::string reason = conv_weight_grad_reason();
  const bool avx512 = cpu_isa_name().rfind("avx512", 0) == 0;
  EXPECT_EQ(conv_weight_grad_own(), !avx512) << reason;
  EXPECT_NE(reason.find("oneDNN dispatches to"), std::string::npos) << reason;
}

// Runs a test body with the choice set, and puts the process's own choice back after.
struct ChoiceGuard {
  bool was = conv_weight_grad_own();
  ~ChoiceGuard() { set_conv_weight_grad_own(was); }
};

TEST(ConvWeightGrad, MatchesAFloat64Reference) {
  const Case cases[] = {
      {4, 26, 26, 32, 64, 3, 3, 1, false, true},  // mnist_cnn's second convolution (2 chunks)
      {3, 12, 12, 32, 32, 3, 3, 1, true, true},   // 'same': padded borders
      {2, 9, 8, 24, 7, 3, 2, 2, true, false},     // stride 2, non-square, no bias, odd F
      {2, 7, 7, 16, 5, 5, 5, 1, false, true},     // 5x5
  };
  uint64_t seed = 3;
  for (const Case& t : cases) {
    SCOPED_TRACE(::testing::Message() << t.n << "x" << t.h << "x" << t.w << "x" << t.c << " -> "
                                      << t.f << ", " << t.kh << "x" << t.kw << " stride " << t.s
                                      << (t.same ? " same" : " valid"));
    const Window2D g = window_2d(t.h, t.w, {t.kh, t.kw}, {t.s, t.s}, t.same, "test conv");
    const auto x = values(t.n * t.h * t.w * t.c, seed++);
    const auto dy = values(t.n * g.h.out * g.w.out * t.f, seed++);
    std::vector<double> dw_ref, db_ref;
    reference(t, g, x, dy, dw_ref, db_ref);
    // Garbage in the outputs: both must be overwritten, not accumulated into.
    std::vector<float> dw(dw_ref.size(), 9.0f), db(size_t(t.f), 9.0f);
    ConvWeightGrad k(ConvShape{t.n, t.h, t.w, t.c, t.f, g, t.bias});
    for (int rep = 0; rep < 2; ++rep) {  // a second step reuses the buffers
      k.run(x.data(), dy.data(), dw.data(), db.data());
      const int64_t terms = t.n * g.h.out * g.w.out;
      expect_close(dw, dw_ref, terms, "dw");
      if (t.bias) expect_close(db, db_ref, terms, "db");
    }
    if (!t.bias) {
      EXPECT_EQ(db, std::vector<float>(size_t(t.f), 9.0f)) << "db written without bias";
    }
  }
}

// The Conv2D layer on either kernel: the same forward and data gradient bit for bit (only the
// weight gradient changes kernel), weight and bias gradients equal within float error.
TEST(ConvWeightGrad, Conv2DLayerAgreesWithOneDnnKernel) {
  const std::string yaml = "conv2d: {filters: 16, kernel: 3, padding: same, activation: relu}";
  const Shape in{10, 10, 24};
  const int64_t batch = 5;
  const Tensor x = random_tensor(with_batch(batch, in), 21);
  struct Run {
    std::vector<float> y, dx, dw, db;
  } runs[2];
  ChoiceGuard guard;
  for (int own = 0; own < 2; ++own) {
    set_conv_weight_grad_own(own == 1);
    LayerUnderTest t(yaml, in);
    const Tensor r = random_tensor(with_batch(batch, t.out), 23);
    Tensor y(with_batch(batch, t.out)), dx(x.shape());
    const StepContext ctx{Mode::kTrain, 3, 0, 5};
    t.layer->forward(x, y, ctx);
    t.layer->backward(x, y, r, &dx);
    runs[own] = {std::vector<float>(y.data(), y.data() + y.size()),
                 std::vector<float>(dx.data(), dx.data() + dx.size()), t.grads[0], t.grads[1]};
  }
  EXPECT_EQ(runs[0].y, runs[1].y);
  EXPECT_EQ(runs[0].dx, runs[1].dx);
  ASSERT_EQ(runs[0].dw.size(), size_t(3 * 3 * 24 * 16));
  std::vector<double> dw(runs[0].dw.begin(), runs[0].dw.end()),
      db(runs[0].db.begin(), runs[0].db.end());
  expect_close(runs[1].dw, dw, batch * 100, "dw");
  expect_close(runs[1].db, db, batch * 100, "db");
  EXPECT_NE(std::memcmp(runs[0].dw.data(), runs[1].dw.data(), runs[0].dw.size() * 4), 0)
      << "the two kernels gave the same bits: was the own kernel used at all?";
}

TEST(ConvWeightGrad, GradientCheckOnTheOwnKernel) {
  ChoiceGuard guard;
  set_conv_weight_grad_own(true);
  LayerUnderTest t("conv2d: {filters: 6, kernel: 3, strides: 2, padding: same, activation: tanh}",
                   {7, 6, 8});
  ASSERT_TRUE(conv_weight_grad_pays(
      ConvShape{2, 7, 6, 8, 6, window_2d(7, 6, {3, 3}, {2, 2}, true, "c"), true}));
  check_gradients(t, 2, StepContext{Mode::kTrain, 3, 0, 5});
}

TEST(ConvWeightGrad, PaysFromAReceptiveFieldOf64) {
  const Window2D g = window_2d(28, 28, {3, 3}, {1, 1}, false, "c");
  EXPECT_FALSE(conv_weight_grad_pays(ConvShape{8, 28, 28, 1, 32, g, true}));   // 9
  EXPECT_FALSE(conv_weight_grad_pays(ConvShape{8, 28, 28, 3, 32, g, true}));   // 27
  EXPECT_TRUE(conv_weight_grad_pays(ConvShape{8, 28, 28, 32, 64, g, true}));   // 288
}

}  // namespace
}  // namespace dpt::testing
