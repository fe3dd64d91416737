// Lookahead (airbench's EMA of the weights): its config, its sync schedule, and the slow
// weights, which live as optimizer state so that checkpoints keep them.
#pragma once
#include <cstdint>

#include "trainer/optim/optimizers.h"

namespace dpt {

// Note [lookahead]: every every_steps steps from start_epoch on, the slow weights move toward
// the network's, slow = rho slow + (1 - rho) w, and the network takes them (w = slow); at the
// end of every epoch the network takes the slow weights again. rho = decay * (t / T)^ramp_power
// at completed step t of T: little averaging early, decay at the end (airbench's EMA
// "lookahead"; Zhang et al. 2019 with a ramped alpha). The slow weights are optimizer state
// ("lookahead" in checkpoints), so a resume is exact. The per-element sync is a kernel per
// backend beside the optimizers' (models/kernels/update_rules.h).
struct LookaheadConfig {
  bool on = false;
  int64_t every_steps = 5;
  double decay = 0.7738;  // 0.95^5
  int64_t start_epoch = 0;
  double ramp_power = 3;
};

// After completed step t (1-based), the rho of a sync that is due, or -1 if none is; the first
// sync has rho 0 (the slow weights start as a copy).
double lookahead_rho(const LookaheadConfig& c, int64_t t, int64_t steps_per_epoch, int64_t epochs);
// Whether a sync happened at or before completed step t (then an epoch's end syncs at rho 1).
bool lookahead_started(const LookaheadConfig& c, int64_t t, int64_t steps_per_epoch);

class Lookahead {
 public:
  // Adds the slow weights to opt's state: make it before a checkpoint is read into opt.
  Lookahead(const LookaheadConfig& c, Optimizer& opt);
  // The sync due after completed step t of a run of epochs x steps_per_epoch steps, if one is
  // (w: the optimizer's weights).
  void after_step(float* w, int64_t t, int64_t steps_per_epoch, int64_t epochs);
  // The end of an epoch at completed step t: the network takes the slow weights.
  void at_epoch_end(float* w, int64_t t, int64_t steps_per_epoch);

 private:
  void sync(float* w, float rho);
  LookaheadConfig c_;
  float* slow_;
  int64_t n_;
  bool on_device_;
};

}  // namespace dpt
