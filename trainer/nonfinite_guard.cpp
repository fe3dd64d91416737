// train.nonfinite: abort or skip a non-finite step, with the BatchNorm statistics restored.
#include "trainer/nonfinite_guard.h"

#include "comm/agree.h"
#include "core/device_memory.h"
#include "core/exit_codes.h"
#include "trainer/log.h"

namespace dpt {

NonFiniteGuard::NonFiniteGuard(NonFinitePolicy policy, Tensor& state, int64_t& skipped_total)
    : policy_(policy), state_(state), skipped_total_(skipped_total) {
  if (policy == NonFinitePolicy::kSkip && state.size() > 0)
    snapshot_ = Tensor(state.shape(), state.device());
}

void NonFiniteGuard::before_step() {
  if (!snapshot_.empty())
    copy_memory(snapshot_.data(), state_.on_device(), state_.data(), state_.on_device(),
                size_t(state_.size()) * sizeof(float));
}

void NonFiniteGuard::after_non_finite_step(const std::string& what, double lr, Communicator& comm) {
  if (policy_ == NonFinitePolicy::kAbort)
    agree(comm, [&] {
      DPT_FAIL_CODE(kExitNonFinite, what
                                        << "; the weights were not updated and the checkpoints "
                                           "are untouched. Lower train.optimizer.lr (now "
                                        << lr
                                        << "), check the "
                                           "data, or set train.nonfinite: skip to skip such steps");
    });
  // Skip: the weights were not updated; undo the BatchNorm statistics of the bad batch.
  if (!snapshot_.empty())
    copy_memory(state_.data(), state_.on_device(), snapshot_.data(), state_.on_device(),
                size_t(state_.size()) * sizeof(float));
  ++skipped_total_;
  // A run whose every step overflows cannot recover by skipping: end it like abort does.
  if (++in_a_row_ > kMaxInARow)
    agree(comm, [&] {
      DPT_FAIL_CODE(kExitNonFinite,
                    what << ", and the " << kMaxInARow
                         << " steps before it were "
                            "skipped too (train.nonfinite: skip): the run does not recover. Lower "
                            "train.optimizer.lr (now "
                         << lr << ") and resume from an earlier checkpoint");
    });
  if (skipped_total_ <= 10)
    log::warn("skipped step: " + what +
              (skipped_total_ == 10 ? " (further skips are counted in metrics.csv)" : ""));
}

}  // namespace dpt
