// Dropout: options; the kernels live in kernels/cpu/dropout_cpu.cpp and
// kernels/cuda/dropout_cuda.cu.
#include "models/layers/dropout.h"

namespace dpt {

Dropout::Dropout(Options& opt) : rate_(float(opt.get_double_in("rate", 0.5, 0.0, 0.999))) {}

}  // namespace dpt
