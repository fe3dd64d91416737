// Learning-rate schedules computed from the global step alone, so a resumed run continues exactly.
#include "trainer/lr_schedule.h"

#include <cmath>

namespace dpt {

double learning_rate(const ScheduleConfig& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                     int64_t epochs) {
  const double spe = double(std::max<int64_t>(steps_per_epoch, 1));
  if (s.kind == "onecycle") {
    const double total = std::max(1.0, double(epochs) * spe - 1), up = s.pct_start * total;
    const double start = base_lr / s.div_factor, end = start / s.final_div_factor;
    const double t = double(step);
    if (t < up) return start + (base_lr - start) * t / up;
    return base_lr + (end - base_lr) * std::min(1.0, (t - up) / std::max(total - up, 1.0));
  }
  const double warmup = s.warmup_epochs * spe;
  if (step < warmup) return base_lr * double(step + 1) / warmup;
  const double epoch = double(step) / spe;
  if (s.kind == "step") return base_lr * std::pow(s.gamma, std::floor(epoch / s.step_epochs));
  if (s.kind == "cosine") {
    const double total = double(epochs) * spe - warmup;
    const double progress = total > 0 ? std::min(1.0, (double(step) - warmup) / total) : 1.0;
    return s.min_lr + (base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return base_lr;  // constant, and warmup's plateau
}

double lookahead_rho(const LookaheadConfig& c, int64_t t, int64_t steps_per_epoch, int64_t epochs) {
  const int64_t start = c.start_epoch * steps_per_epoch;
  if (!c.on || t <= start || t % c.every_steps != 0) return -1;
  if (t - c.every_steps <= start) return 0;  // the first sync: slow = w
  const double progress = double(t) / double(steps_per_epoch * epochs);
  return c.decay * std::pow(std::min(progress, 1.0), c.ramp_power);
}

bool lookahead_started(const LookaheadConfig& c, int64_t t, int64_t steps_per_epoch) {
  const int64_t start = c.start_epoch * steps_per_epoch;
  return c.on && t >= (start / c.every_steps + 1) * c.every_steps;
}

}  // namespace dpt
