// The process-wide oneDNN engine and stream, and error translation for primitive execution.
#include "models/kernels/cpu/dnnl_context.h"

#include <ios>

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

void check_precision_cpu(Precision p) {
  if (p != Precision::kBf16) return;
  // AVX512-BF16 (Cooper Lake, Zen 4 and later) or AMX (Sapphire Rapids and later); anything
  // older would run bf16 emulated, slower than fp32.
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  // ISA values are bit sets, each including the ones below it: AMX and later ISAs pass too.
  DPT_CHECK((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16,
            "train.precision bf16 needs a CPU with AVX512-BF16 or AMX, but oneDNN dispatches to "
            "ISA code 0x" << std::hex << int(isa) << std::dec << " here (see dptrain --version); "
            "use precision: fp32");
}

}  // namespace dpt
