// IntervalMeter: what every rank adds up between two logging points, all-reduced once per
// interval, with the slow-rank and divergence warnings that watch those sums.
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "models/layers/softmax_cross_entropy.h"

namespace dpt {

// Note [interval sums]: between two logging points every rank sums its loss, correct
// predictions and samples; rank 0 alone counts skipped steps (every rank skips the same steps);
// each rank also records its busy seconds and samples in its own slot, for the slow-rank check.
// One all-reduce of doubles per interval carries all of it: metrics are never reduced per step.
class IntervalMeter {
 public:
  IntervalMeter(Communicator& comm, int64_t num_classes);
  void restart();                      // a new interval starts now (and at an epoch's start)
  void add_step(const LossStats& s);   // a finite step's sums on this rank
  void add_skipped();                  // a skipped step (counted once, by rank 0)
  void add_allreduce(double seconds);  // time this rank waited for gradient all-reduces
  void add_busy(double seconds, int64_t samples);  // this rank's compute time of a step

  struct Totals {
    LossStats stats;  // over all ranks
    int64_t skipped = 0;
    double seconds = 0;        // the interval's wall time
    double allreduce_sec = 0;  // rank 0's all-reduce waits
  };
  // Collective: all-reduces the sums and warns (rank 0) about a slow rank or a diverging loss
  // (lr: the learning rate to name); the caller restarts the interval once it has written them.
  Totals flush(double lr);

 private:
  void warn_slow_ranks(const double* sums);
  void warn_divergence(const LossStats& s, double lr);
  using Clock = std::chrono::steady_clock;
  Communicator& comm_;
  double chance_loss_;
  std::vector<double> sums_;
  double allreduce_ = 0;
  Clock::time_point start_ = Clock::now();
  std::vector<int> slow_streak_;  // per rank: intervals in a row at > 2x the others' median
  bool divergence_warned_ = false;
};

}  // namespace dpt
