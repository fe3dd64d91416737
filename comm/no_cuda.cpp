// The CUDA side of comm/ in a CPU-only build: NCCL is refused with a clear error.
#include "comm/nccl_communicator.h"
#include "core/error.h"

#ifndef DPT_WITH_CUDA
namespace dpt {

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&) {
  DPT_FAIL("this dptrain was built without CUDA, so without NCCL; use train.backend: cpu");
}

}  // namespace dpt
#endif
