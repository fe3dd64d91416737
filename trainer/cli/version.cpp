// Version report: compile-time dptrain version, run-time library versions, CPU model and ISA.
#include "trainer/cli/commands.h"

#include <hdf5.h>
#include <mpi.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "core/build_info.h"
#include "core/cpu_info.h"
#include "core/device_memory.h"
#include "core/error.h"
#include "models/kernels/precision_support.h"

namespace dpt::cli {

namespace {
// A bad DPT_MAX_POOL is refused by train; --version shows it instead of failing.
std::string kernel_choices() {
  try {
    return cpu_kernel_choices();
  } catch (const Error& e) {
    return e.what();
  }
}
}  // namespace

std::string version_report() {
  std::string out = "dptrain " DPT_VERSION " (" DPT_GIT_COMMIT ", " DPT_BUILD_TYPE
                    ", CUDA backend " DPT_CUDA_STATE ")\n";
  const dnnl_version_t* d = dnnl_version();
  out += "oneDNN " + std::to_string(d->major) + "." + std::to_string(d->minor) + "." +
         std::to_string(d->patch) +
         (std::string(d->hash) == "N/A" ? "" : " (" + std::string(d->hash) + ")") +
         ", dispatching to " + cpu_isa_name() + " on " + cpu_description() + "; " +
         kernel_choices() + "\n";
  int mpi_major = 0, mpi_minor = 0, len = 0;
  MPI_Get_version(&mpi_major, &mpi_minor);
  char lib[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  MPI_Get_library_version(lib, &len);
  std::string lib_line(lib);  // len may count the terminating NUL
  if (const auto nl = lib_line.find('\n'); nl != std::string::npos) lib_line.resize(nl);
  out +=
      "MPI " + std::to_string(mpi_major) + "." + std::to_string(mpi_minor) + ": " + lib_line + "\n";
  unsigned h_major = 0, h_minor = 0, h_rel = 0;
  H5get_libversion(&h_major, &h_minor, &h_rel);
  out += "HDF5 " + std::to_string(h_major) + "." + std::to_string(h_minor) + "." +
         std::to_string(h_rel) + "\n";
  out += gpu_library_versions();
  return out;
}

}  // namespace dpt::cli
