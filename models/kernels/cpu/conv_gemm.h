// A convolution's forward, weight and bias gradient and data gradient on the CPU as im2col +
// oneDNN's SGEMM (Note [own conv GEMM]).
#pragma once
#include <cstdint>
#include <vector>

#include "models/layers/window.h"

namespace dpt::cpu {

// Note [own conv GEMM]: oneDNN 2.6's AVX2 convolutions ran at 35-71% of this CPU's SGEMM rate
// on the zoo's shapes (a Zen 3; docs/RESULTS.md), the backward weights slowest, while SGEMM
// runs the same multiply-adds at 85-98% when they are laid out as one matrix product. So each
// pass is one, over chunks of output pixels (kChunkBytes of col, near the caches; SGEMM threads
// each product). Row p of col is output pixel p's receptive field in (kh, kw, c) order -- the
// row order of the HWIO kernel, which is therefore a (K x F) matrix as it stands -- followed,
// with a bias, by a 1:
//   forward:         y[P][F] = col[P][K+1] (W; b)[K+1][F], then the ReLU if fused;
//   weight gradient: (dW; db)[K+1][F] = sum over chunks of col[P][K+1]^T dy[P][F];
//   data gradient:   dcol[P][K] = dy[P][F] W^T, then each input pixel gathers its entries
//                    (chunks of whole images, so that every entry of a pixel is in its chunk;
//                    a fixed order, no atomics).
// The sums run in other orders than oneDNN's, so the last bits differ from its kernels':
// tests/unit/test_conv_gemm.cpp compares each pass with a float64 reference and the Conv2D
// layer on either kernel.
struct ConvShape {
  int64_t n, h, w, c;  // input, NHWC
  int64_t filters;
  Window2D g;
  bool bias;
};

// Where it pays (measured, docs/RESULTS.md): a receptive field of at least 64 values. The first
// layers of the zoo (3x3 over 1 or 3 channels: 9 or 27) ran 1.2-2x slower on it than on oneDNN,
// their products being too thin for SGEMM; 3x3 over 24-128 channels ran faster.
bool conv_gemm_pays(const ConvShape& s);
// The weight gradient paid on every such layer; the forward and the data gradient only where
// oneDNN's were slow: 'valid' padding (MNIST's 26x26 and 11x11 outputs: oneDNN's forward and
// data gradient at 40-61% of SGEMM, these at 64-73%). With 'same' padding (CIFAR's 32, 16, 8)
// oneDNN's data gradient ran at 86-101% and the own one lost up to 1.8x on 32 filters.
bool conv_gemm_pays_forward_and_data(const ConvShape& s);

class ConvGemm {
 public:
  explicit ConvGemm(const ConvShape& s);
  // y (n, oh, ow, filters) from x (NHWC), w (HWIO) and b (filters; ignored without bias), with
  // max(y, 0) applied when relu.
  void forward(const float* x, const float* w, const float* b, float* y, bool relu);
  // dw (HWIO) and db (ignored without bias) from x and dy: both overwritten.
  void weight_grad(const float* x, const float* dy, float* dw, float* db);
  // dx (NHWC) from dy and w: overwritten.
  void data_grad(const float* dy, const float* w, float* dx);

 private:
  void im2col(const float* x, int64_t first, int64_t rows);
  void gather(float* dx, int64_t first_image, int64_t images);
  ConvShape s_;
  int64_t k_, k1_, pixels_, chunk_, images_per_chunk_;
  std::vector<float> col_, acc_, w_ext_;
};

// This process's choice (Note [own kernels below AVX-512]): DPT_CONV=own|onednn, else the own
// kernels below AVX-512. They apply to FP32 convolutions where they pay (above; the forward
// with no activation or a ReLU); bf16 stays with oneDNN.
bool conv_gemm_own();
void set_conv_gemm_own(bool own);  // for tests and benchmarks: new layers use it
const char* conv_gemm_reason();

}  // namespace dpt::cpu
