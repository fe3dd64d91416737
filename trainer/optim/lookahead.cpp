// Lookahead's schedule and syncs (Note [lookahead]), on the optimizer's device.
#include "trainer/optim/lookahead.h"

#include <algorithm>
#include <cmath>

#include "models/kernels/update_rules.h"

namespace dpt {

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

Lookahead::Lookahead(const LookaheadConfig& c, Optimizer& opt)
    : c_(c), slow_(opt.add_state("lookahead")), n_(opt.size()), on_device_(opt.on_device()) {}

void Lookahead::after_step(float* w, int64_t t, int64_t steps_per_epoch, int64_t epochs) {
  const double rho = lookahead_rho(c_, t, steps_per_epoch, epochs);
  if (rho >= 0) sync(w, float(rho));
}

void Lookahead::at_epoch_end(float* w, int64_t t, int64_t steps_per_epoch) {
  if (lookahead_started(c_, t, steps_per_epoch)) sync(w, 1.0f);
}

void Lookahead::sync(float* w, float rho) {
  if (on_device_) {
    lookahead_sync_cuda(w, slow_, n_, rho);
  } else {
    lookahead_sync_cpu(w, slow_, n_, rho);
  }
}

}  // namespace dpt
