// Compute back-end set-up: GPU selection and the gradient communicator, by train.backend.
#include "comm/backend.h"

#include <cstdlib>
#include <string>

#include "comm/nccl_communicator.h"
#include "core/device_memory.h"

namespace dpt {

Device select_device(Device backend, const Communicator& comm) {
  if (backend != Device::kCuda) return Device::kCpu;
  select_gpu(comm.local_rank(), comm.local_size());
  return Device::kCuda;
}

std::unique_ptr<Communicator> make_gradient_communicator(Device device, Communicator& host) {
  // DPT_NCCL_ALWAYS=1: NCCL on one GPU too, so that a one-GPU machine exercises the NCCL path
  // (its events and polled waits; the GPU bundle's check).
  const char* always = std::getenv("DPT_NCCL_ALWAYS");
  const bool nccl = host.size() > 1 || (always && std::string(always) == "1");
  if (device == Device::kCuda && nccl) return make_nccl_communicator(host);
  return nullptr;
}

std::string describe_device(Device device, const Communicator& gradients) {
  if (device != Device::kCuda) return "";
  return "GPUs: rank 0 uses GPU " + std::to_string(current_gpu()) +
         " (each rank its own); gradients all-reduced with " + gradients.backend();
}

}  // namespace dpt
