// Learning-rate schedules (constant, step, cosine, each with optional linear warm-up; one-cycle)
// and lookahead's sync schedule.
#pragma once
#include <cstdint>

#include "trainer/config.h"

namespace dpt {

// lr for the step about to run (0-based global step).
double learning_rate(const ScheduleConfig& s, double base_lr, int64_t step, int64_t steps_per_epoch,
                     int64_t epochs);

// Note [lookahead]: after completed step t (1-based), the rho of a sync that is due, or -1 if
// none is; the first sync has rho 0 (the slow weights start as a copy).
double lookahead_rho(const LookaheadConfig& c, int64_t t, int64_t steps_per_epoch, int64_t epochs);
// Whether a sync happened at or before completed step t (then an epoch's end syncs at rho 1).
bool lookahead_started(const LookaheadConfig& c, int64_t t, int64_t steps_per_epoch);

}  // namespace dpt
