// OpenMP threads per rank from the affinity mask and the node's local ranks.
#include "comm/threads.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace dpt {

void share_cores_among_local_ranks(const Communicator& comm) {
  if (std::getenv("OMP_NUM_THREADS")) return;
  cpu_set_t set;
  int cpus = 1;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  // Under a launcher that binds each rank to its own cores, the mask already shows its share.
  const bool bound = cpus < int(std::thread::hardware_concurrency());
  omp_set_num_threads(std::max(1, bound ? cpus : cpus / comm.local_size()));
}

int threads_per_rank() { return omp_get_max_threads(); }

}  // namespace dpt
