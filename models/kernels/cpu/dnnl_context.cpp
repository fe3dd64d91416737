// The process-wide oneDNN engine and stream, and error translation for primitive execution.
#include "models/kernels/cpu/dnnl_context.h"

#include <ios>

#include "core/cpu_info.h"
#include "models/kernels/cpu/conv_gemm.h"
#include "models/kernels/cpu/max_pool_nhwc.h"
#include "models/kernels/precision_support.h"

namespace dpt::cpu {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

void execute(const dnnl::primitive& prim, const std::unordered_map<int, dnnl::memory>& args,
             const std::string& where) {
  try {
    prim.execute(stream(), args);
    stream().wait();
  } catch (const dnnl::error& e) {
    DPT_FAIL("oneDNN failed in " << where << ": " << e.what() << " (status " << e.status << ")");
  }
}

dnnl::primitive_attr scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::memory make_scratchpad(const dnnl::memory::desc& md) { return dnnl::memory(md, engine()); }

}  // namespace dpt::cpu

namespace dpt {

std::string cpu_isa_name() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic:
      return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "isa " + std::to_string(int(dnnl_get_effective_cpu_isa()));
  }
}

// ISA values are bit sets, each including the ones below it: AMX and later ISAs pass too.
// Anything without AVX512-BF16 would run bf16 emulated, slower than fp32.
bool isa_has_native_bf16(unsigned isa) {
  return (isa & unsigned(dnnl_cpu_isa_avx512_core_bf16)) == unsigned(dnnl_cpu_isa_avx512_core_bf16);
}

std::string cpu_kernel_choices() {
  const bool own = cpu::max_pool_kernel() == cpu::MaxPoolKernel::kOwn;
  const bool gemm = cpu::conv_gemm_own();
  return std::string("max pooling on ") + (own ? "dptrain's NHWC kernel" : "oneDNN") + " (" +
         cpu::max_pool_kernel_reason() + "); FP32 convolutions on " +
         (gemm ? "im2col + SGEMM where it pays (docs/CONFIG.md, DPT_CONV)" : "oneDNN") +
         " (" + cpu::conv_gemm_reason() + ")";
}

namespace {
std::string dispatch() {
  return "oneDNN dispatches to " + cpu_isa_name() + " on " + cpu_description();
}
}  // namespace

PrecisionChoice auto_precision_cpu() {
  if (isa_has_native_bf16(unsigned(dnnl_get_effective_cpu_isa())))
    return {Precision::kBf16, dispatch() + ", which computes bf16 natively"};
  return {Precision::kFp32, dispatch() +
                                ", which has no native bf16 (AVX512-BF16 or AMX), "
                                "where bf16 would be emulated and slower than fp32"};
}

void check_precision_cpu(Precision p) {
  DPT_ASSERT(p != Precision::kAuto);  // resolved first (resolve_precision)
  if (p != Precision::kBf16) return;
  DPT_CHECK(isa_has_native_bf16(unsigned(dnnl_get_effective_cpu_isa())),
            "train.precision bf16 needs a CPU with AVX512-BF16 or AMX, but "
                << dispatch()
                << " (see dptrain --version); use precision: auto (bf16 where the hardware has it, "
                   "fp32 elsewhere) or precision: fp32");
}

}  // namespace dpt
