// Precision: the arithmetic of convolutions and dense layers (train.precision).
#pragma once
#include <string>

namespace dpt {

// Note [precision]: kFp32 is exact FP32 everywhere (the default). kBf16 runs convolutions and
// dense layers on bfloat16 inputs and weights with FP32 accumulation and FP32 outputs, while
// the master weights, gradients, optimizer state, loss, softmax and BatchNorm statistics stay
// FP32 (mixed precision as PyTorch's autocast and Keras' mixed_bfloat16 do it). One exception:
// cuDNN's bf16 convolutions (pseudo-bf16, FP32 compute) take and give bf16 tensors, so on a GPU
// a convolution's output and gradients are rounded to bf16 before they are widened to FP32;
// CPU and GPU bf16 results differ by that rounding. kTf32 lets a GPU
// use TF32 tensor cores for FP32 tensors; on a CPU it is FP32.
// kAuto is a request, never an arithmetic: the trainer resolves it once the device is known
// (models/kernels/precision_support.h) to kBf16 where the hardware computes bf16 natively
// (AVX512-BF16 or AMX CPUs, Ampere or newer GPUs) and to kFp32 elsewhere, since emulated bf16
// is slower than fp32. Checkpoints and summary.yaml record what it resolved to.
enum class Precision { kFp32, kBf16, kTf32, kAuto };

Precision parse_precision(const std::string& name, const std::string& where);
const char* precision_name(Precision p);

}  // namespace dpt
