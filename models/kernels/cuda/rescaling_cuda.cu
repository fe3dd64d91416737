// Rescaling on the GPU: the twin of models/kernels/cpu/rescaling_cpu.cpp.
#include "models/kernels/cuda/elementwise.cuh"
#include "models/layers/rescaling.h"

namespace dpt {

void Rescaling::forward_cuda(const Tensor& x, Tensor& y, const StepContext&) {
  cuda::affine(x.data(), y.data(), x.size(), scale_, offset_);
}

void Rescaling::backward_cuda(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (dx) cuda::affine(dy.data(), dx->data(), dy.size(), scale_, 0.0f);
}

}  // namespace dpt
