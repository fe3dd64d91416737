// The process-wide oneDNN engine and stream, memory-descriptor helpers and a checked execute.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/tensor.h"

namespace dpt::cpu {

dnnl::engine& engine();
dnnl::stream& stream();

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// oneDNN describes activations as N,C,H,W logically; dptrain stores them NHWC as Keras does.
inline dnnl::memory::desc nhwc_md(const Shape& s, dt type = dt::f32) {
  return dnnl::memory::desc({s[0], s[3], s[1], s[2]}, type, tag::nhwc);
}
inline dnnl::memory::desc nc_md(int64_t n, int64_t c, dt type = dt::f32) {
  return dnnl::memory::desc({n, c}, type, tag::nc);
}
inline dnnl::memory::desc x_md(int64_t n) { return dnnl::memory::desc({n}, dt::f32, tag::x); }

// A memory object created once; its data pointer is rebound on every call (no allocation).
inline dnnl::memory with_data(dnnl::memory& m, const float* p) {
  m.set_data_handle(const_cast<float*>(p));
  return m;
}

// Runs a primitive and waits; oneDNN errors become dpt::Error naming the layer.
void execute(const dnnl::primitive& prim, const std::unordered_map<int, dnnl::memory>& args,
             const std::string& where);

// A scratch buffer sized once per primitive (user scratchpad mode: no hidden allocations).
dnnl::primitive_attr scratchpad_attr();
dnnl::memory make_scratchpad(const dnnl::memory::desc& md);

}  // namespace dpt::cpu
