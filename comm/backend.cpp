// Compute back-end set-up: GPU selection and the gradient communicator, by train.backend.
#include "comm/backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "comm/nccl_communicator.h"
#include "core/device_memory.h"
#include "core/error.h"

namespace dpt {

Device select_device(Device backend, const Communicator& comm) {
  if (backend != Device::kCuda) return Device::kCpu;
  select_gpu(comm.local_rank(), comm.local_size());
  return Device::kCuda;
}

namespace {
// FNV-1a, as two exact doubles (32 bits each), so that an all-reduce of sums carries it.
void put_hash(const std::string& s, double* slot) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  slot[0] = double(h & 0xffffffffu);
  slot[1] = double(h >> 32);
}
}  // namespace

void check_one_gpu_per_rank(Device device, const std::string& uuid, Communicator& comm) {
  if (device != Device::kCuda || comm.size() == 1) return;
  // Per rank: its host's hash and its GPU's, each in its own slots (the others' stay 0).
  const size_t world = size_t(comm.size()), me = size_t(comm.rank());
  std::vector<double> slots(4 * world, 0.0);
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  put_hash(host, &slots[4 * me]);
  put_hash(uuid, &slots[4 * me + 2]);
  comm.allreduce_sum_f64(slots.data(), slots.size());
  for (size_t other = 0; other < world; ++other) {
    if (other == me) continue;
    const bool same_host =
        slots[4 * other] == slots[4 * me] && slots[4 * other + 1] == slots[4 * me + 1];
    const bool same_gpu =
        slots[4 * other + 2] == slots[4 * me + 2] && slots[4 * other + 3] == slots[4 * me + 3];
    DPT_CHECK(
        !(same_host && same_gpu),
        "ranks " << std::min(me, other) << " and " << std::max(me, other) << " on host " << host
                 << " both use GPU " << uuid
                 << ": each rank needs a GPU of its own. Start "
                    "at most one rank per GPU, and let the launcher show each rank its own (srun "
                    "--gpus-per-task=1, or CUDA_VISIBLE_DEVICES per rank) or all of them");
  }
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
