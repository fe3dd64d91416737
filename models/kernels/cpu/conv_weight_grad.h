// A convolution's weight and bias gradient on the CPU as im2col + oneDNN's SGEMM (Note [own
// conv weight gradient]).
#pragma once
#include <cstdint>
#include <vector>

#include "models/layers/window.h"

namespace dpt::cpu {

// Note [own conv weight gradient]: oneDNN 2.6's AVX2 backward-weights convolution ran at 35-41%
// of this CPU's SGEMM rate on MNIST shapes (a Zen 3; docs/RESULTS.md), while SGEMM itself runs
// the same multiply-adds at 85-98% when they are laid out as one matrix product. So the
// gradient is computed as one: for each chunk of output pixels P,
//   acc[K1][F] (+)= col[P][K1]^T dy[P][F],
// where row p of col is output pixel p's receptive field in (kh, kw, c) order -- the row order
// of the HWIO kernel, so acc is the HWIO gradient as it stands -- followed, when the layer has a
// bias, by a 1 whose row of the product is the bias gradient. Chunks keep col near the caches
// (kChunkBytes); SGEMM threads each product. The sums run in another order than oneDNN's, so the
// bits differ from its kernel's: tests/unit/test_conv_weight_grad.cpp compares the two within
// float tolerance, and the float64 reference tests run whichever the CPU chooses.
struct ConvShape {
  int64_t n, h, w, c;  // input, NHWC
  int64_t filters;
  Window2D g;
  bool bias;
};

// Where it pays (measured, docs/RESULTS.md): a receptive field of at least 64 values. The first
// layers of the zoo (3x3 over 1 or 3 channels: 9 or 27) ran 1.2-2x slower on it than on oneDNN,
// their product being too thin for SGEMM; 3x3 over 32-128 channels ran 1.3-1.6x faster.
bool conv_weight_grad_pays(const ConvShape& s);

class ConvWeightGrad {
 public:
  explicit ConvWeightGrad(const ConvShape& s);
  // dw (kh * kw * c * filters, HWIO) and db (filters; ignored without bias) from x (NHWC) and
  // dy (n, oh, ow, filters): both overwritten.
  void run(const float* x, const float* dy, float* dw, float* db);

 private:
  void im2col(const float* x, int64_t first, int64_t rows);
  ConvShape s_;
  int64_t k_, k1_, pixels_, chunk_;
  std::vector<float> col_, acc_;
};

// This process's choice (Note [own kernels below AVX-512]): DPT_CONV_WEIGHT_GRAD=own|onednn,
// else the own kernel below AVX-512. It applies to FP32 convolutions; bf16 stays with oneDNN.
bool conv_weight_grad_own();
void set_conv_weight_grad_own(bool own);  // for tests and benchmarks: new layers use it
const char* conv_weight_grad_reason();

}  // namespace dpt::cpu
