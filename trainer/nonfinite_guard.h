// NonFiniteGuard: train.nonfinite's policy for a step whose loss or gradient is NaN or infinite.
#pragma once
#include <cstdint>
#include <string>

#include "comm/communicator.h"
#include "core/tensor.h"
#include "trainer/config.h"

namespace dpt {

// Every rank meets the same verdict at the same step (Note [non-finite verdict] in
// train_step.h), so each rank's guard decides alike and no rank is left in a collective.
// abort: the run ends with exit code 3 naming the step, the first bad gradient and the lr.
// skip: the update did not happen; the BatchNorm statistics of the bad batch are restored from
// the snapshot taken before the step; after kMaxInARow skips in a row the run ends as abort.
class NonFiniteGuard {
 public:
  static constexpr int64_t kMaxInARow = 20;
  // state: the model's BatchNorm statistics (snapshotted in skip mode); skipped_total: the
  // checkpointed count of skipped steps.
  NonFiniteGuard(NonFinitePolicy policy, Tensor& state, int64_t& skipped_total);
  void before_step();  // the snapshot of the statistics (skip mode, with statistics)
  void after_finite_step() { in_a_row_ = 0; }
  // what: "non-finite loss or gradient (NaN or infinity) at epoch E, step S ..."; lr names the
  // learning rate in the advice. Throws (agreed by all ranks) unless the step may be skipped.
  void after_non_finite_step(const std::string& what, double lr, Communicator& comm);

 private:
  NonFinitePolicy policy_;
  Tensor& state_;
  Tensor snapshot_;
  int64_t& skipped_total_;
  int64_t in_a_row_ = 0;
};

}  // namespace dpt
