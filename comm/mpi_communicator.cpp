// MpiCommunicator: MPI initialisation, local rank from a shared-memory split, checked collectives.
#include "comm/mpi_communicator.h"

#include <cstdio>
#include <cstdlib>

#include "comm/local_communicator.h"
#include "models/core/error.h"

namespace dpt {

namespace {

class MpiWork : public Work {
 public:
  MpiWork() = default;
  MPI_Request* request() { return &req_; }
  void wait() override {
    if (req_ != MPI_REQUEST_NULL) DPT_MPI_CHECK(MPI_Wait(&req_, MPI_STATUS_IGNORE));
  }
  bool test() override {
    int done = 1;
    if (req_ != MPI_REQUEST_NULL) DPT_MPI_CHECK(MPI_Test(&req_, &done, MPI_STATUS_IGNORE));
    return done != 0;
  }

 private:
  MPI_Request req_ = MPI_REQUEST_NULL;
};

bool launched_by_mpi_or_slurm() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                        "MPI_LOCALNRANKS", "SLURM_STEP_ID"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

MpiCommunicator::MpiCommunicator(int* argc, char*** argv) {
  int provided = 0;
  DPT_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  DPT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  DPT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  // Local rank: ranks sharing this node's memory, numbered in world order. Should the MPI
  // library not support the split, the launchers' own variables say the same.
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    DPT_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
    DPT_MPI_CHECK(MPI_Comm_size(node, &local_size_));
    MPI_Comm_free(&node);
    return;
  }
  auto env_int = [](std::initializer_list<const char*> names, int fallback) {
    for (const char* n : names)
      if (const char* v = std::getenv(n)) return std::atoi(v);
    return fallback;
  };
  local_rank_ = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}, 0);
  local_size_ = env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}, 1);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::unique_ptr<Work> MpiCommunicator::allreduce_sum(float* buf, size_t n) {
  auto w = std::make_unique<MpiWork>();
  DPT_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                               w->request()));
  return w;
}

void MpiCommunicator::allreduce_sum_f64(double* buf, size_t n) {
  DPT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
}

void MpiCommunicator::broadcast(void* buf, size_t bytes, int root) {
  DPT_MPI_CHECK(MPI_Bcast(buf, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD));
}

void MpiCommunicator::barrier() { DPT_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

void MpiCommunicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

std::unique_ptr<Communicator> make_communicator(int* argc, char*** argv) {
  if (!launched_by_mpi_or_slurm()) return std::make_unique<LocalCommunicator>();
  auto comm = std::make_unique<MpiCommunicator>(argc, argv);
  // srun without a working PMI plugin starts N singleton MPI processes, each believing it is
  // alone: they would train N unrelated models. Refuse that.
  const char* step_tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (step_tasks && !std::getenv("OMPI_COMM_WORLD_SIZE") && std::atoi(step_tasks) != comm->size()) {
    std::fprintf(stderr,
                 "dptrain: error: srun started %s tasks but MPI sees %d rank(s): launch with "
                 "srun --mpi=pmix (see slurm/README.md)\n", step_tasks, comm->size());
    MPI_Finalize();
    std::exit(1);
  }
  return comm;
}

}  // namespace dpt
