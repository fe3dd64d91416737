// What this machine offers the kernels: whether it can run a precision, what train.precision:
// auto means here (oneDNN's CPU ISA, the GPU's compute capability), and the CPU kernel choices.
#pragma once
#include <string>

#include "core/precision.h"

namespace dpt {

// What a run computes in, and why (logged at start, written to summary.yaml).
struct PrecisionChoice {
  Precision precision = Precision::kFp32;
  std::string reason;  // empty for an explicit request; says what the hardware has for auto
};

// train.precision as this process runs it: kAuto becomes bf16 where the CPU (oneDNN's ISA) or
// the selected GPU computes bf16 natively and fp32 elsewhere (Note [precision]); an explicit
// precision is checked and kept. On the GPU, call after the device is selected.
PrecisionChoice resolve_precision(Precision requested, bool on_gpu);

// A clear error naming the CPU / GPU and what it has when p cannot run there
// (kernels/cpu/dnnl_context.cpp, kernels/cuda/cuda_context.cu; a CPU-only build's no_cuda.cpp
// refuses any GPU).
void check_precision_cpu(Precision p);
void check_precision_cuda(Precision p);  // for the GPU this process selected
inline void check_precision(Precision p, bool on_gpu) {
  if (on_gpu) {
    check_precision_cuda(p);
  } else {
    check_precision_cpu(p);
  }
}
PrecisionChoice auto_precision_cpu();
PrecisionChoice auto_precision_cuda();

// oneDNN's CPU side by name: the ISA it dispatches to ("avx2", "avx512_core_bf16"), and
// whether an ISA (a dnnl_cpu_isa_t value) has native bf16 (AVX512-BF16 or AMX).
std::string cpu_isa_name();
bool isa_has_native_bf16(unsigned isa);
// The CPU kernels this process chose where dptrain has two for an op (Note [own max-pool
// kernel]): said at the start of training and by dptrain --version.
std::string cpu_kernel_choices();

}  // namespace dpt
