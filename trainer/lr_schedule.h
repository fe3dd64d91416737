// Learning-rate schedules: constant, step, cosine, each with optional linear warm-up.
#pragma once
#include <cstdint>

#include "trainer/config.h"

namespace dpt {

// lr for the step about to run (0-based global step).
double learning_rate(const ScheduleConfig& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                     int64_t epochs);

}  // namespace dpt
