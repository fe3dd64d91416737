// NcclCommunicator: gradient all-reduce of device buffers with NCCL on its own CUDA stream.
#pragma once
#include "comm/communicator.h"

namespace dpt {

// Device-buffer collectives go through NCCL; host collectives (metrics, broadcasts, barriers)
// through the host communicator, which also carries NCCL's unique id from rank 0 to the rest.
// Note [nccl ordering]: an all-reduce waits (on the GPU, not the host) for an event recorded on
// the compute stream after the kernels that produced the bucket, runs on the NCCL stream, and
// its wait() makes the compute stream wait for it: buckets overlap the rest of backward.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host);

}  // namespace dpt
