// train.precision: bf16 layers against fp32 ones (CPU; the GPU when there is one), and the
// configuration and hardware checks.
#include <gtest/gtest.h>

#include <oneapi/dnnl/dnnl.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/cpu_info.h"
#include "core/device_memory.h"
#include "layer_harness.h"
#include "models/kernels/precision_support.h"
#include "models/model.h"

namespace dpt::testing {
namespace {

bool cpu_has_bf16() {
  try {
    check_precision_cpu(Precision::kBf16);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Relative to the tensor's largest magnitude: bf16 keeps 8 significant bits (rounding error
// 2^-9 per operand), and a dot product's errors partly cancel.
// (require_difference: the CPU bf16 checks, where bit-identical results mean bf16 was not used.)
void expect_close_scaled(const Tensor& a, const Tensor& b, double tol, const std::string& what,
                         bool require_difference = true) {
  ASSERT_EQ(a.size(), b.size());
  double scale = 1e-12;
  for (int64_t i = 0; i < a.size(); ++i) scale = std::max(scale, double(std::fabs(a.data()[i])));
  double worst = 0;
  for (int64_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double(a.data()[i]) - double(b.data()[i])) / scale);
  EXPECT_LE(worst, tol) << what << ": largest difference " << worst << " of the largest value";
  if (require_difference) EXPECT_GT(worst, 0.0) << what << ": bit-identical, so bf16 was not used";
}

// The same layer and parameters in fp32 and bf16: outputs, input gradients, weight gradients.
void compare_precisions(const std::string& yaml, const Shape& in, int64_t batch) {
  SCOPED_TRACE(yaml);
  LayerUnderTest f32(yaml, in), b16(yaml, in);
  b16.layer->set_precision(Precision::kBf16);
  const StepContext ctx{Mode::kTrain, 1, 0, 0};
  const Tensor x = random_tensor(with_batch(batch, in), 41);
  const Tensor dy = random_tensor(with_batch(batch, f32.out), 42);
  Tensor y1(with_batch(batch, f32.out)), y2(y1.shape()), dx1(x.shape()), dx2(x.shape());
  f32.layer->forward(x, y1, ctx);
  b16.layer->forward(x, y2, ctx);
  f32.layer->backward(x, y1, dy, &dx1);
  b16.layer->backward(x, y2, dy, &dx2);
  expect_close_scaled(y1, y2, 2e-2, "y");
  expect_close_scaled(dx1, dx2, 2e-2, "dx");
  for (size_t k = 0; k < f32.params.size(); ++k)
    if (f32.params[k].grad)
      expect_close_scaled(Tensor::view(f32.params[k].grad, f32.params[k].spec.shape),
                          Tensor::view(b16.params[k].grad, b16.params[k].spec.shape), 2e-2,
                          f32.params[k].spec.name);
}

TEST(Precision, Bf16LayersMatchFp32WithinBf16Rounding) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX";
  compare_precisions("conv2d: {filters: 16, kernel: 3, activation: relu}", {12, 12, 8}, 4);
  compare_precisions("conv2d: {filters: 8, kernel: 2, padding: same, strides: 2}", {9, 9, 3}, 3);
  compare_precisions("dense: {units: 32, activation: tanh}", {64}, 8);
  compare_precisions("dense: {units: 10}", {50}, 5);
}

TEST(Precision, Fp32IsTheDefaultAndStaysExact) {
  LayerUnderTest a("conv2d: {filters: 4, kernel: 3}", {6, 6, 2}),
      b("conv2d: {filters: 4, kernel: 3}", {6, 6, 2});
  b.layer->set_precision(Precision::kFp32);
  EXPECT_EQ(a.layer->precision(), Precision::kFp32);
  const Tensor x = random_tensor({2, 6, 6, 2}, 5);
  Tensor y1({2, 4, 4, 4}), y2({2, 4, 4, 4});
  a.layer->forward(x, y1, StepContext{});
  b.layer->forward(x, y2, StepContext{});
  for (int64_t i = 0; i < y1.size(); ++i) ASSERT_EQ(y1.data()[i], y2.data()[i]);
}

TEST(Precision, NamesParseAndUnknownOnesAreRefused) {
  EXPECT_EQ(parse_precision("bf16", "train.precision"), Precision::kBf16);
  EXPECT_EQ(parse_precision("tf32", "train.precision"), Precision::kTf32);
  EXPECT_EQ(parse_precision("auto", "train.precision"), Precision::kAuto);
  EXPECT_STREQ(precision_name(Precision::kFp32), "fp32");
  EXPECT_STREQ(precision_name(Precision::kAuto), "auto");
  EXPECT_THROW(parse_precision("fp16", "train.precision"), Error);
}

TEST(Precision, NativeBf16IsAvx512Bf16OrAnyIsaAboveIt) {
  EXPECT_FALSE(isa_has_native_bf16(dnnl_cpu_isa_avx2));
  EXPECT_FALSE(isa_has_native_bf16(dnnl_cpu_isa_avx2_vnni));
  EXPECT_FALSE(isa_has_native_bf16(dnnl_cpu_isa_avx512_core));
  EXPECT_FALSE(isa_has_native_bf16(dnnl_cpu_isa_avx512_core_vnni));
  EXPECT_TRUE(isa_has_native_bf16(dnnl_cpu_isa_avx512_core_bf16));
  EXPECT_TRUE(isa_has_native_bf16(dnnl_cpu_isa_avx512_core_amx));
}

// auto is a request: on the CPU it resolves to what this CPU's ISA computes natively, with a
// reason naming the ISA and the CPU; explicit precisions pass through without a reason.
TEST(Precision, AutoResolvesToWhatThisCpuComputesNatively) {
  const PrecisionChoice c = resolve_precision(Precision::kAuto, false);
  EXPECT_EQ(c.precision, isa_has_native_bf16(unsigned(dnnl_get_effective_cpu_isa()))
                             ? Precision::kBf16
                             : Precision::kFp32);
  EXPECT_NE(c.reason.find("oneDNN dispatches to " + cpu_isa_name() + " on " + cpu_description()),
            std::string::npos)
      << c.reason;
  const PrecisionChoice f = resolve_precision(Precision::kFp32, false);
  EXPECT_EQ(f.precision, Precision::kFp32);
  EXPECT_TRUE(f.reason.empty());
  // A layer or model is never set to auto.
  Model m(YAML::Load("input: [3]\nlayers:\n  - dense: {units: 2}\n"), "m");
  EXPECT_THROW(m.set_precision(Precision::kAuto), Error);
}

// CI's check of the AVX2 path on bigger CPUs (tests/CMakeLists.txt, label avx2): the cap must
// have reached oneDNN, or those tests would prove nothing.
TEST(Precision, TheAvx2CapOfOneDnnIsHonoured) {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!cap || std::strcmp(cap, "AVX2") != 0) GTEST_SKIP() << "ONEDNN_MAX_CPU_ISA=AVX2 is not set";
  EXPECT_EQ(cpu_isa_name(), "avx2");
  EXPECT_EQ(resolve_precision(Precision::kAuto, false).precision, Precision::kFp32);
  EXPECT_THROW(check_precision_cpu(Precision::kBf16), Error);
}

// A host tensor's copy on the GPU, and back.
Tensor to_gpu(const Tensor& t) {
  Tensor g(t.shape(), Device::kCuda);
  copy_memory(g.data(), true, t.data(), false, size_t(t.size()) * sizeof(float));
  return g;
}
Tensor to_host(const Tensor& g) {
  Tensor t(g.shape());
  copy_memory(t.data(), false, g.data(), true, size_t(g.size()) * sizeof(float));
  return t;
}

// The GPU's conv2d and dense in precision p against the CPU's fp32 ones: outputs, input
// gradients and parameter gradients within tol of the largest value (Note [precision]).
void compare_gpu_with_cpu_fp32(Precision p, double tol) {
  for (const char* yaml :
       {"conv2d: {filters: 8, kernel: 3, padding: same}", "dense: {units: 16}"}) {
    SCOPED_TRACE(std::string(precision_name(p)) + " " + yaml);
    const Shape in = std::string(yaml).rfind("conv2d", 0) == 0 ? Shape{8, 8, 4} : Shape{24};
    LayerUnderTest cpu(yaml, in), gpu(yaml, in);
    std::vector<Tensor> dev;
    std::vector<Param*> ptrs;
    for (auto& q : gpu.params) {
      dev.emplace_back(to_gpu(Tensor::view(q.value, q.spec.shape)));
      q.value = dev.back().data();
      dev.emplace_back(q.spec.shape, Device::kCuda);
      q.grad = dev.back().data();
      ptrs.push_back(&q);
    }
    gpu.layer->bind(ptrs);
    gpu.layer->set_precision(p);
    const Tensor x = random_tensor(with_batch(4, in), 3);
    const Tensor dy = random_tensor(with_batch(4, cpu.out), 4);
    Tensor y(with_batch(4, cpu.out)), dx(x.shape());
    Tensor xg = to_gpu(x), dyg = to_gpu(dy), yg(y.shape(), Device::kCuda),
           dxg(x.shape(), Device::kCuda);
    cpu.layer->forward(x, y, StepContext{Mode::kTrain});
    cpu.layer->backward(x, y, dy, &dx);
    gpu.layer->forward(xg, yg, StepContext{Mode::kTrain});
    gpu.layer->backward(xg, yg, dyg, &dxg);
    expect_close_scaled(y, to_host(yg), tol, "y", false);
    expect_close_scaled(dx, to_host(dxg), tol, "dx", false);
    for (size_t k = 0; k < cpu.params.size(); ++k)
      expect_close_scaled(Tensor::view(cpu.params[k].grad, cpu.params[k].spec.shape),
                          to_host(Tensor::view(gpu.params[k].grad, gpu.params[k].spec.shape)), tol,
                          cpu.params[k].spec.name + " gradient", false);
  }
}

TEST(Precision, GpuBf16MatchesCpuFp32WithinBf16Rounding) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA build or no usable GPU on this machine";
  compare_gpu_with_cpu_fp32(Precision::kBf16, 2e-2);  // 8 significant bits
}

TEST(Precision, GpuTf32MatchesCpuFp32WithinTf32Rounding) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA build or no usable GPU on this machine";
  compare_gpu_with_cpu_fp32(Precision::kTf32, 5e-3);  // 11 significant bits
}

}  // namespace
}  // namespace dpt::testing
