// What train.backend sets up for a rank: the device its model lives on and the communicator
// its gradients travel through (the trainer stays free of CUDA).
#pragma once
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "core/tensor.h"

namespace dpt {

// kCuda: selects this rank's GPU (Note [gpu per rank]), which must happen before any device
// allocation; returns the device the model lives on.
Device select_device(Device backend, const Communicator& comm);

// Collective, after select_device on every rank (gpu_uuid: current_gpu_uuid() there):
// refuses two ranks of one node on one GPU (a launcher that shows each rank the same single
// device), naming them, before NCCL would stop with "Duplicate GPU detected".
void check_one_gpu_per_rank(Device device, const std::string& gpu_uuid, Communicator& comm);

// The communicator for gradients and BatchNorm statistics once the model is on `device`: NCCL
// between several GPUs (or on one, with DPT_NCCL_ALWAYS=1), else `host` itself (returned as
// null: nothing to own).
std::unique_ptr<Communicator> make_gradient_communicator(Device device, Communicator& host);

// "GPU 0 (each rank its own), gradients over nccl" for the log; "" on the CPU.
std::string describe_device(Device device, const Communicator& gradients);

}  // namespace dpt
