// The own-or-oneDNN choice of Note [own kernels below AVX-512].
#include "models/kernels/cpu/kernel_choice.h"

#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>

#include "core/error.h"
#include "models/kernels/precision_support.h"

namespace dpt::cpu {

KernelChoice choose_kernel(const char* env) {
  if (const char* set = std::getenv(env)) {
    const std::string v = set;
    DPT_CHECK(v == "own" || v == "onednn",
              env << " is '" << v << "'; expected own or onednn (or leave it unset)");
    return {v == "own", std::string(env) + "=" + v};
  }
  const unsigned isa = unsigned(dnnl_get_effective_cpu_isa());
  const bool avx512 =
      (isa & unsigned(dnnl_cpu_isa_avx512_core)) == unsigned(dnnl_cpu_isa_avx512_core);
  return {!avx512, "oneDNN dispatches to " + cpu_isa_name()};
}

}  // namespace dpt::cpu
