// ReorderedMemory: a buffer as a primitive wants it (blocked layout, bfloat16), kept beside the
// user's plain FP32 memory and converted by a oneDNN reorder when the two differ.
#pragma once
#include <string>

#include "models/kernels/cpu/dnnl_context.h"

namespace dpt::cpu {

struct ReorderedMemory {
  dnnl::memory user, mine;
  dnnl::reorder reorder;
  bool needed = false;
  // to_user: the primitive writes `mine` and flush() converts it back into the user's memory.
  void init(const dnnl::memory::desc& user_md, const dnnl::memory::desc& want, bool to_user) {
    user = dnnl::memory(user_md, engine(), DNNL_MEMORY_NONE);
    needed = user_md != want;
    if (!needed) return;
    mine = dnnl::memory(want, engine());
    dnnl::memory u(user_md, engine(), DNNL_MEMORY_NONE);
    reorder = to_user ? dnnl::reorder(mine, u) : dnnl::reorder(u, mine);
  }
  // The memory to pass to the primitive; for inputs, reordered from p first.
  dnnl::memory input(const float* p, const std::string& where) {
    if (!needed) return with_data(user, p);
    execute(reorder, {{DNNL_ARG_FROM, with_data(user, p)}, {DNNL_ARG_TO, mine}}, where);
    return mine;
  }
  // The converted copy made by the last input() (the same bf16 activations for backward).
  dnnl::memory last_input(const float* p) { return needed ? mine : with_data(user, p); }
  dnnl::memory output(float* p) { return needed ? mine : with_data(user, p); }
  void flush(float* p, const std::string& where) {
    if (needed) execute(reorder, {{DNNL_ARG_FROM, mine}, {DNNL_ARG_TO, with_data(user, p)}}, where);
  }
};

}  // namespace dpt::cpu
