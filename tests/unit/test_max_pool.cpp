// The own NHWC max-pool kernel against oneDNN's pooling + ReLU primitives, bit for bit, on
// inputs full of ties and negative values (Note [own max-pool kernel]).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "models/kernels/cpu/dnnl_context.h"
#include "models/kernels/cpu/max_pool_nhwc.h"

namespace dpt::testing {
namespace {

using namespace cpu;

struct Case {
  int64_t n, h, w, c, k, s;
  bool same, relu;
};

// Values on a coarse grid so that windows hold exact ties, half of them negative, and a
// constant region (a blank image border) where every position ties.
std::vector<float> tied_values(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> level(-4, 4);
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = 0.5f * float(level(rng));
  for (size_t i = 0; i < v.size() / 5; ++i) v[i] = -0.25f;
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// oneDNN: pooling_max forward_training (+ eltwise_relu_use_dst_for_bwd), and the backward.
void onednn_pool(const Case& t, const Window2D& g, const std::vector<float>& x,
                 const std::vector<float>& dy, std::vector<float>& y, std::vector<float>& dx) {
  const auto src_md = nhwc_md({t.n, t.h, t.w, t.c});
  const auto dst_md = nhwc_md({t.n, g.h.out, g.w.out, t.c});
  const dnnl::memory::dims strides{g.sh, g.sw}, kernel{g.kh, g.kw}, pad_l{g.h.pad_lo, g.w.pad_lo},
      pad_r{g.h.pad_hi, g.w.pad_hi};
  dnnl::pooling_forward::primitive_desc fpd(
      {dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, src_md, dst_md, strides,
       kernel, pad_l, pad_r},
      engine());
  dnnl::pooling_backward::primitive_desc bpd(
      {dnnl::algorithm::pooling_max, src_md, dst_md, strides, kernel, pad_l, pad_r}, engine(), fpd);
  dnnl::memory ws(fpd.workspace_desc(), engine());
  std::vector<float> dy_pre = dy;
  execute(dnnl::pooling_forward(fpd),
          {{DNNL_ARG_SRC, dnnl::memory(src_md, engine(), const_cast<float*>(x.data()))},
           {DNNL_ARG_DST, dnnl::memory(dst_md, engine(), y.data())},
           {DNNL_ARG_WORKSPACE, ws}},
          "reference pool forward");
  if (t.relu) {
    const auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    const auto md = nc_md(int64_t(y.size()) / t.c, t.c);
    dnnl::eltwise_forward::primitive_desc efd({dnnl::prop_kind::forward_training, alg, md, 0, 0},
                                              engine());
    dnnl::eltwise_backward::primitive_desc ebd({alg, md, md, 0, 0}, engine(), efd);
    dnnl::memory ym(md, engine(), y.data());
    execute(dnnl::eltwise_forward(efd), {{DNNL_ARG_SRC, ym}, {DNNL_ARG_DST, ym}},
            "reference relu forward");
    execute(dnnl::eltwise_backward(ebd),
            {{DNNL_ARG_DST, ym},
             {DNNL_ARG_DIFF_DST, dnnl::memory(md, engine(), const_cast<float*>(dy.data()))},
             {DNNL_ARG_DIFF_SRC, dnnl::memory(md, engine(), dy_pre.data())}},
            "reference relu backward");
  }
  execute(dnnl::pooling_backward(bpd),
          {{DNNL_ARG_DIFF_DST, dnnl::memory(dst_md, engine(), dy_pre.data())},
           {DNNL_ARG_DIFF_SRC, dnnl::memory(src_md, engine(), dx.data())},
           {DNNL_ARG_WORKSPACE, ws}},
          "reference pool backward");
}

TEST(OwnMaxPool, MatchesOneDnnBitForBitWithTiesNegativesPaddingAndRelu) {
  const Case cases[] = {
      {8, 26, 26, 32, 2, 2, false, false},  // mnist_convnet's first pool
      {8, 26, 26, 32, 2, 2, false, true},   // ... with the ReLU moved behind it
      {3, 7, 9, 20, 2, 2, false, true},     // odd sizes: 'valid' drops the last row and column
      {3, 7, 9, 20, 2, 2, true, true},      // 'same': TF pads the bottom/right
      {2, 10, 11, 5, 3, 3, true, false},    // 3x3 windows, C not a multiple of the vector width
      {2, 12, 12, 16, 2, 3, false, true},   // stride > window: inputs no window covers
  };
  uint32_t seed = 1;
  for (const Case& t : cases) {
    SCOPED_TRACE(::testing::Message()
                 << t.n << "x" << t.h << "x" << t.w << "x" << t.c << " pool " << t.k << " stride "
                 << t.s << (t.same ? " same" : " valid") << (t.relu ? " relu" : ""));
    const Window2D g = window_2d(t.h, t.w, {t.k, t.k}, {t.s, t.s}, t.same, "test pool");
    ASSERT_TRUE(own_max_pool_applies(g));
    const int64_t out = t.n * g.h.out * g.w.out * t.c, in = t.n * t.h * t.w * t.c;
    const auto x = tied_values(in, seed++);
    const auto dy = tied_values(out, seed++);
    const auto out_n = static_cast<size_t>(out), in_n = static_cast<size_t>(in);
    std::vector<float> y_ref(out_n), dx_ref(in_n), y(out_n),
        dx(in_n, 7.0f);  // garbage: every element must be written
    std::vector<uint8_t> ws(out_n);
    onednn_pool(t, g, x, dy, y_ref, dx_ref);
    const MaxPoolShape s{t.n, t.h, t.w, t.c, g, t.relu};
    max_pool_forward(s, x.data(), y.data(), ws.data());
    max_pool_backward(s, y.data(), dy.data(), ws.data(), dx.data());
    EXPECT_TRUE(same_bits(y, y_ref)) << "forward differs from oneDNN";
    EXPECT_TRUE(same_bits(dx, dx_ref)) << "backward differs from oneDNN";
  }
}

TEST(OwnMaxPool, AppliesOnlyToNonOverlappingWindows) {
  EXPECT_TRUE(own_max_pool_applies(window_2d(8, 8, {2, 2}, {2, 2}, false, "p")));
  EXPECT_FALSE(own_max_pool_applies(window_2d(8, 8, {3, 3}, {2, 2}, false, "p")));
  EXPECT_FALSE(own_max_pool_applies(window_2d(40, 40, {16, 16}, {16, 16}, false, "p")));
}

// Note [own max-pool kernel]: oneDNN's pooling on AVX-512, the own kernel below it (where
// oneDNN's AVX2 pooling measured slower), unless DPT_MAX_POOL says otherwise.
TEST(OwnMaxPool, IsChosenBelowAvx512) {
  if (std::getenv("DPT_MAX_POOL")) GTEST_SKIP() << "DPT_MAX_POOL is set";
  const unsigned isa = unsigned(dnnl_get_effective_cpu_isa());
  const bool avx512 =
      (isa & unsigned(dnnl_cpu_isa_avx512_core)) == unsigned(dnnl_cpu_isa_avx512_core);
  EXPECT_EQ(max_pool_kernel(), avx512 ? MaxPoolKernel::kOneDnn : MaxPoolKernel::kOwn);
  EXPECT_NE(std::string(max_pool_kernel_reason()).find("oneDNN dispatches to"), std::string::npos);
}

}  // namespace
}  // namespace dpt::testing
