// GoogleTest main for tests run under mpiexec: one MPI communicator for the whole process.
#include <gtest/gtest.h>

#include "comm/mpi_communicator.h"
#include "mpi_env.h"

namespace dpt::testing {
Communicator* g_comm = nullptr;
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dpt::MpiCommunicator comm(&argc, &argv);
  dpt::testing::g_comm = &comm;
  // Only rank 0 prints gtest's progress; every rank still runs and asserts.
  if (comm.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  // A failure on any rank fails the job.
  double failed = rc != 0 ? 1.0 : 0.0;
  comm.allreduce_sum_f64(&failed, 1);
  return failed > 0 ? 1 : 0;
}
