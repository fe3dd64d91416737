// MetricsRow: one row of a run's metrics, as metrics.csv and the TensorBoard files record it.
#pragma once
#include <cstdint>

namespace dpt {

struct MetricsRow {
  int64_t epoch = 0;  // 1-based epoch
  int64_t step = 0;   // global step at the end of the interval
  double loss = 0, accuracy = 0;
  double val_loss = -1, val_accuracy = -1;  // -1: not evaluated in this row
  double lr = 0, images_per_sec = 0, allreduce_sec = 0, elapsed_sec = 0;
  int64_t skipped_steps = 0;  // non-finite steps skipped (train.nonfinite: skip)
};

}  // namespace dpt
