// require_one_process: the commands that write one output refuse mpirun, reported once.
#include "comm/agree.h"
#include "trainer/cli/commands.h"

namespace dpt::cli {

void require_one_process(Communicator& comm, const std::string& command) {
  agree(comm, [&] {
    DPT_CHECK(comm.size() == 1, "run dptrain " << command << " as one process, not under mpirun ("
                                               << comm.size() << " ranks here)");
  });
}

}  // namespace dpt::cli
