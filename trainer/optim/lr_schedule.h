// Learning-rate schedules: constant, step, cosine, each with optional linear warm-up; one-cycle.
#pragma once
#include <cstdint>

namespace dpt {

enum class ScheduleKind { kConstant, kStep, kCosine, kWarmup, kOneCycle };

// train.lr_schedule (parsed in trainer/config.cpp).
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kConstant;
  double warmup_epochs = 0;              // linear warm-up from 0, before any schedule
  double step_epochs = 10, gamma = 0.1;  // step: lr *= gamma every step_epochs
  double min_lr = 0.0;                   // cosine floor
  // onecycle (per step, linear): lr/div_factor up to lr over pct_start of all steps, then down
  // to lr/(div_factor*final_div_factor) at the last step (PyTorch's OneCycleLR, linear).
  double pct_start = 0.25, div_factor = 25, final_div_factor = 1e4;
};

// lr for the step about to run (0-based global step).
double learning_rate(const ScheduleConfig& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                     int64_t epochs);

}  // namespace dpt
