// Threads per rank: the ranks of one node share its cores instead of each taking all of them.
#pragma once
#include "comm/communicator.h"

namespace dpt {

// Unless OMP_NUM_THREADS says otherwise: the cores this process may run on (its affinity mask,
// which shows its share when a launcher binds ranks), divided among the node's local ranks
// when they are not bound.
void share_cores_among_local_ranks(const Communicator& comm);

// The OpenMP threads this rank computes with.
int threads_per_rank();

}  // namespace dpt
