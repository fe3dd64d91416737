// The process-wide oneDNN engine and stream, and error translation for primitive execution.
#include "models/kernels/cpu/dnnl_context.h"

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
