// Learning-rate schedules computed from the global step alone, so a resumed run continues exactly.
#include "trainer/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace dpt {

double learning_rate(const ScheduleConfig& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                     int64_t epochs) {
  const double spe = double(std::max<int64_t>(steps_per_epoch, 1));
  if (s.kind == ScheduleKind::kOneCycle) {
    const double total = std::max(1.0, double(epochs) * spe - 1), up = s.pct_start * total;
    const double start = base_lr / s.div_factor, end = start / s.final_div_factor;
    const double t = double(step);
    if (t < up) return start + (base_lr - start) * t / up;
    return base_lr + (end - base_lr) * std::min(1.0, (t - up) / std::max(total - up, 1.0));
  }
  const double warmup = s.warmup_epochs * spe;
  if (step < warmup) return base_lr * double(step + 1) / warmup;
  const double epoch = double(step) / spe;
  if (s.kind == ScheduleKind::kStep)
    return base_lr * std::pow(s.gamma, std::floor(epoch / s.step_epochs));
  if (s.kind == ScheduleKind::kCosine) {
    const double total = double(epochs) * spe - warmup;
    const double progress = total > 0 ? std::min(1.0, (double(step) - warmup) / total) : 1.0;
    return s.min_lr + (base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return base_lr;  // constant, and warmup's plateau
}

}  // namespace dpt
