// `dptrain --version`: dptrain's version and those of the libraries it runs on, for bug reports.
#pragma once
#include <string>

namespace dpt {

// Several lines: dptrain, oneDNN (and the CPU ISA it dispatches to), MPI, HDF5, and CUDA,
// cuDNN and NCCL when compiled in. Safe to call before MPI is initialised.
std::string version_report();

}  // namespace dpt
