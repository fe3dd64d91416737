// The im2col + SGEMM convolution (Note [own conv GEMM]): forward, weight and data gradients
// against a float64 reference, the Conv2D layer on it against oneDNN's kernels, a gradient
// check through the layer, and its CPU choice.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "layer_harness.h"
#include "models/kernels/cpu/conv_gemm.h"
#include "models/kernels/cpu/kernel_choice.h"
#include "models/kernels/precision_support.h"

namespace dpt::testing {
namespace {

using namespace cpu;

struct Case {
  int64_t n, h, w, c, f, kh, kw, s;
  bool same, bias;
};

struct Reference {
  std::vector<double> y, dw, db, dx;
};

// Direct loops in double over every (n, oy, ox, i, j, c, f) with TF padding.
Reference reference(const Case& t, const Window2D& g, const std::vector<float>& x,
                    const std::vector<float>& w, const std::vector<float>& b,
                    const std::vector<float>& dy) {
  Reference r;
  r.y.assign(dy.size(), 0.0);
  r.dw.assign(w.size(), 0.0);
  r.db.assign(size_t(t.f), 0.0);
  r.dx.assign(x.size(), 0.0);
  for (int64_t n = 0; n < t.n; ++n)
    for (int64_t oy = 0; oy < g.h.out; ++oy)
      for (int64_t ox = 0; ox < g.w.out; ++ox) {
        const size_t o = size_t(((n * g.h.out + oy) * g.w.out + ox) * t.f);
        for (int64_t f = 0; f < t.f; ++f) {
          if (t.bias) r.y[o + size_t(f)] += b[size_t(f)];
          r.db[size_t(f)] += dy[o + size_t(f)];
        }
        for (int64_t i = 0; i < t.kh; ++i)
          for (int64_t j = 0; j < t.kw; ++j) {
            const int64_t iy = oy * t.s - g.h.pad_lo + i, ix = ox * t.s - g.w.pad_lo + j;
            if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
            const size_t in = size_t(((n * t.h + iy) * t.w + ix) * t.c);
            for (int64_t c = 0; c < t.c; ++c)
              for (int64_t f = 0; f < t.f; ++f) {
                const size_t k = size_t(((i * t.kw + j) * t.c + c) * t.f + f);
                r.y[o + size_t(f)] += double(x[in + size_t(c)]) * w[k];
                r.dw[k] += double(x[in + size_t(c)]) * dy[o + size_t(f)];
                r.dx[in + size_t(c)] += double(w[k]) * dy[o + size_t(f)];
              }
          }
      }
  return r;
}

std::vector<float> values(int64_t count, uint64_t seed) {
  const Tensor t = random_tensor({count}, seed);
  return std::vector<float>(t.data(), t.data() + count);
}

// |a - b| within float accumulation error of sums of `terms` products of values in [-1, 1].
void expect_close(const std::vector<float>& got, const std::vector<double>& want, int64_t terms,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double tol = 1e-6 * double(terms);
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::fabs(double(got[i]) - want[i]) > tol && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs " << want[i];
}

// Note [own kernels below AVX-512]: the own kernels below AVX-512 unless DPT_CONV says.
TEST(ConvGemm, IsChosenBelowAvx512) {
  if (std::getenv("DPT_CONV")) GTEST_SKIP() << "DPT_CONV is set";
  const bool avx512 = cpu_isa_name().rfind("avx512", 0) == 0;
  const KernelChoice fresh = choose_kernel("DPT_CONV");  // what a new process chooses
  EXPECT_EQ(fresh.own, !avx512) << fresh.reason;
  EXPECT_NE(fresh.reason.find("oneDNN dispatches to"), std::string::npos) << fresh.reason;
  const std::string reason = conv_gemm_reason();
  if (reason != "set by the caller") {
    EXPECT_EQ(conv_gemm_own(), fresh.own) << reason;
  }
}

// Runs a test body with the choice set, and puts the process's own choice back after.
struct ChoiceGuard {
  bool was = conv_gemm_own();
  ~ChoiceGuard() { set_conv_gemm_own(was); }
};

TEST(ConvGemm, EveryPassMatchesAFloat64Reference) {
  const Case cases[] = {
      {4, 26, 26, 32, 64, 3, 3, 1, false, true},  // mnist_cnn's second convolution (chunks
                                                  // split images in the weight gradient)
      {3, 12, 12, 32, 32, 3, 3, 1, true, true},   // 'same': padded borders
      {2, 9, 8, 24, 7, 3, 2, 2, true, false},     // stride 2, non-square, no bias, odd F
      {2, 7, 7, 16, 5, 5, 5, 1, false, true},     // 5x5
      {1, 40, 40, 96, 8, 3, 3, 1, true, true},    // one image beyond a chunk (2 MiB of col)
  };
  uint64_t seed = 3;
  for (const Case& t : cases) {
    SCOPED_TRACE(::testing::Message() << t.n << "x" << t.h << "x" << t.w << "x" << t.c << " -> "
                                      << t.f << ", " << t.kh << "x" << t.kw << " stride " << t.s
                                      << (t.same ? " same" : " valid"));
    const Window2D g = window_2d(t.h, t.w, {t.kh, t.kw}, {t.s, t.s}, t.same, "test conv");
    const auto x = values(t.n * t.h * t.w * t.c, seed++);
    const auto w = values(t.kh * t.kw * t.c * t.f, seed++);
    const auto b = values(t.f, seed++);
    const auto dy = values(t.n * g.h.out * g.w.out * t.f, seed++);
    const Reference ref = reference(t, g, x, w, b, dy);
    // Garbage in the outputs: all must be overwritten, not accumulated into.
    std::vector<float> y(dy.size(), 9.0f), dw(w.size(), 9.0f), db(size_t(t.f), 9.0f),
        dx(x.size(), 9.0f), y_relu(dy.size());
    ConvGemm k(ConvShape{t.n, t.h, t.w, t.c, t.f, g, t.bias});
    for (int rep = 0; rep < 2; ++rep) {  // a second step reuses the buffers
      k.forward(x.data(), w.data(), b.data(), y.data(), false);
      k.weight_grad(x.data(), dy.data(), dw.data(), db.data());
      k.data_grad(dy.data(), w.data(), dx.data());
      const int64_t pixels = t.n * g.h.out * g.w.out;
      expect_close(y, ref.y, t.kh * t.kw * t.c, "y");
      expect_close(dw, ref.dw, pixels, "dw");
      if (t.bias) expect_close(db, ref.db, pixels, "db");
      expect_close(dx, ref.dx, t.kh * t.kw * t.f, "dx");
    }
    if (!t.bias) {
      EXPECT_EQ(db, std::vector<float>(size_t(t.f), 9.0f)) << "db written without bias";
    }
    k.forward(x.data(), w.data(), b.data(), y_relu.data(), true);
    for (size_t i = 0; i < y.size(); ++i) {
      const float want = y[i] > 0.0f ? y[i] : 0.0f;  // +0.0, never -0.0
      ASSERT_EQ(std::memcmp(&y_relu[i], &want, sizeof want), 0) << "relu of y[" << i << "]";
    }
  }
}

// The Conv2D layer on either kernel: forward, data, weight and bias gradients equal within
// float error; and the own kernels did run where they should (their bits differ).
TEST(ConvGemm, Conv2DLayerAgreesWithOneDnnKernels) {
  for (const char* padding : {"valid", "same"})
    for (const char* act : {"relu", "linear", "tanh"}) {  // tanh: forward stays on oneDNN
      SCOPED_TRACE(std::string(padding) + " " + act);
      const std::string yaml = std::string("conv2d: {filters: 16, kernel: 3, padding: ") +
                               padding + ", activation: " + act + "}";
      const Shape in{10, 10, 24};
      const int64_t batch = 5;
      const Tensor x = random_tensor(with_batch(batch, in), 21);
      struct Run {
        std::vector<float> y, dx, dw, db;
      } runs[2];
      ChoiceGuard guard;
      for (int own = 0; own < 2; ++own) {
        set_conv_gemm_own(own == 1);
        LayerUnderTest t(yaml, in);
        const Tensor r = random_tensor(with_batch(batch, t.out), 23);
        Tensor y(with_batch(batch, t.out)), dx(x.shape());
        const StepContext ctx{Mode::kTrain, 3, 0, 5};
        t.layer->forward(x, y, ctx);
        t.layer->backward(x, y, r, &dx);
        runs[own] = {std::vector<float>(y.data(), y.data() + y.size()),
                     std::vector<float>(dx.data(), dx.data() + dx.size()), t.grads[0], t.grads[1]};
      }
      auto as_double = [](const std::vector<float>& v) {
        return std::vector<double>(v.begin(), v.end());
      };
      expect_close(runs[1].y, as_double(runs[0].y), 216, "y");
      expect_close(runs[1].dx, as_double(runs[0].dx), 144, "dx");
      expect_close(runs[1].dw, as_double(runs[0].dw), batch * 100, "dw");
      expect_close(runs[1].db, as_double(runs[0].db), batch * 100, "db");
      auto differ = [](const std::vector<float>& a, const std::vector<float>& b) {
        return std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0;
      };
      EXPECT_TRUE(differ(runs[0].dw, runs[1].dw)) << "the own weight gradient did not run";
      const bool valid = std::string(padding) == "valid", tanh = std::string(act) == "tanh";
      EXPECT_EQ(differ(runs[0].y, runs[1].y), valid && !tanh) << "forward on the wrong kernel";
      EXPECT_EQ(differ(runs[0].dx, runs[1].dx), valid) << "data gradient on the wrong kernel";
    }
}

TEST(ConvGemm, GradientCheckThroughTheLayer) {
  ChoiceGuard guard;
  set_conv_gemm_own(true);
  // 'valid': all three passes on the own kernels.
  LayerUnderTest t("conv2d: {filters: 6, kernel: 3, strides: 2, activation: relu}", {9, 8, 8});
  ASSERT_TRUE(conv_gemm_pays_forward_and_data(
      ConvShape{2, 9, 8, 8, 6, window_2d(9, 8, {3, 3}, {2, 2}, false, "c"), true}));
  check_gradients(t, 2, StepContext{Mode::kTrain, 3, 0, 5});
}

TEST(ConvGemm, PaysFromAReceptiveFieldOf64AndForwardAndDataOnlyUnpadded) {
  const Window2D g = window_2d(28, 28, {3, 3}, {1, 1}, false, "c");
  EXPECT_FALSE(conv_gemm_pays(ConvShape{8, 28, 28, 1, 32, g, true}));   // 9
  EXPECT_FALSE(conv_gemm_pays(ConvShape{8, 28, 28, 3, 32, g, true}));   // 27
  EXPECT_TRUE(conv_gemm_pays(ConvShape{8, 28, 28, 32, 64, g, true}));   // 288
  EXPECT_TRUE(conv_gemm_pays_forward_and_data(ConvShape{8, 28, 28, 32, 64, g, true}));
  const Window2D same = window_2d(28, 28, {3, 3}, {1, 1}, true, "c");
  EXPECT_TRUE(conv_gemm_pays(ConvShape{8, 28, 28, 32, 64, same, true}));
  EXPECT_FALSE(conv_gemm_pays_forward_and_data(ConvShape{8, 28, 28, 32, 64, same, true}));
  EXPECT_FALSE(conv_gemm_pays_forward_and_data(ConvShape{8, 28, 28, 3, 64, g, true}));
}

}  // namespace
}  // namespace dpt::testing
