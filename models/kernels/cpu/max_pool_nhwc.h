// Max pooling in NHWC with non-overlapping windows: a training forward that records each
// output's winning window position in one byte, and its backward, both with an optional ReLU.
#pragma once
#include <cstdint>

#include "models/layers/window.h"

namespace dpt::cpu {

// Note [own max-pool kernel]: oneDNN 2.6's max pooling with a training workspace measured 4x
// slower than its own inference pooling at MNIST shapes (docs/RESULTS.md); this kernel runs
// along C (contiguous in NHWC) so that the compiler vectorises it, and fuses the ReLU of Note
// [relu after pool]. It reproduces oneDNN's numbers bit for bit: the first maximum in the
// window's row-major order wins a tie (a strict > comparison), padding never wins, and the ReLU
// and its gradient give +0.0 where y <= 0, as oneDNN's alpha = 0 paths do (not x * 0 = -0.0).
// Windows must not overlap (stride >= window) so that each input takes at most one gradient
// and no sum order is involved; tests/unit/test_max_pool.cpp compares it with oneDNN.
// Which of the two runs depends on the CPU (measured, docs/RESULTS.md): oneDNN 2.6's AVX-512
// pooling beat this kernel 1.4-2.2x on a Zen 4, while its AVX2 pooling lost to it 4-9x on a
// Zen 3 (bench/pool_kernels.cpp). So the choice is made once per process from oneDNN's ISA and
// said at start (cpu_kernel_choices). Both give the same bits: the choice changes no result.
struct MaxPoolShape {
  int64_t n, h, w, c;  // input
  Window2D g;
  bool relu = false;
};

// The kernel applies where its exactness argument holds: max pooling whose windows do not
// overlap and hold at most 255 positions.
bool own_max_pool_applies(const Window2D& g);

// This process's choice for max pooling where the own kernel applies: DPT_MAX_POOL=own|onednn
// when set (benchmarks), else the own kernel below AVX-512. set_ overrides it for new layers.
enum class MaxPoolKernel { kOwn, kOneDnn };
MaxPoolKernel max_pool_kernel();
void set_max_pool_kernel(MaxPoolKernel k);
const char* max_pool_kernel_reason();  // why: "oneDNN dispatches to avx2", "DPT_MAX_POOL=own"

// y (n, oh, ow, c) and ws (one byte per element of y) from x (n, h, w, c).
void max_pool_forward(const MaxPoolShape& s, const float* x, float* y, uint8_t* ws);

// dx (n, h, w, c) from dy and ws (and y for the ReLU). Every element of dx is written.
void max_pool_backward(const MaxPoolShape& s, const float* y, const float* dy, const uint8_t* ws,
                       float* dx);

}  // namespace dpt::cpu
