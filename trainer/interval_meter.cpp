// The interval sums of Note [interval sums], their one all-reduce, and the warnings they feed.
#include "trainer/interval_meter.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "trainer/log.h"

namespace dpt {

namespace {
enum : size_t { kLoss = 0, kCorrect, kCount, kSkipped, kPerRank };
}  // namespace

IntervalMeter::IntervalMeter(Communicator& comm, int64_t num_classes)
    : comm_(comm),
      chance_loss_(std::log(double(num_classes))),
      sums_(kPerRank + 2 * size_t(comm.size()), 0.0),
      slow_streak_(size_t(comm.size()), 0) {}

void IntervalMeter::restart() {
  std::fill(sums_.begin(), sums_.end(), 0.0);
  allreduce_ = 0;
  start_ = Clock::now();
}

void IntervalMeter::add_step(const LossStats& s) {
  sums_[kLoss] += s.loss_sum;
  sums_[kCorrect] += double(s.correct);
  sums_[kCount] += double(s.count);
}

void IntervalMeter::add_skipped() {
  if (comm_.rank() == 0) sums_[kSkipped] += 1;
}

void IntervalMeter::add_allreduce(double seconds) { allreduce_ += seconds; }

void IntervalMeter::add_busy(double seconds, int64_t samples) {
  sums_[kPerRank + size_t(comm_.rank())] += std::max(0.0, seconds);
  sums_[kPerRank + size_t(comm_.size() + comm_.rank())] += double(samples);
}

IntervalMeter::Totals IntervalMeter::flush(double lr) {
  comm_.allreduce_sum_f64(sums_.data(), sums_.size());
  Totals t;
  t.stats = LossStats{sums_[kLoss], int64_t(sums_[kCorrect]), int64_t(sums_[kCount])};
  t.skipped = int64_t(sums_[kSkipped]);
  t.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  t.allreduce_sec = allreduce_;
  if (comm_.rank() == 0 && comm_.size() > 1) warn_slow_ranks(sums_.data());
  warn_divergence(t.stats, lr);
  return t;
}

// Slow ranks (Horovod's stall inspector, per sample so that uneven shards do not count): a rank
// whose busy time per sample is over twice the median of the others' for three intervals in a
// row holds every rank back; say so once per episode.
void IntervalMeter::warn_slow_ranks(const double* v) {
  const int world = comm_.size();
  std::vector<double> per_sample(size_t(world), -1);
  for (int q = 0; q < world; ++q) {
    const double n = v[kPerRank + size_t(world + q)];
    if (n > 0) per_sample[size_t(q)] = v[kPerRank + size_t(q)] / n;
  }
  for (int q = 0; q < world; ++q) {
    std::vector<double> others;
    for (int o = 0; o < world; ++o)
      if (o != q && per_sample[size_t(o)] > 0) others.push_back(per_sample[size_t(o)]);
    if (per_sample[size_t(q)] <= 0 || others.empty()) continue;
    std::nth_element(others.begin(), others.begin() + long(others.size() / 2), others.end());
    const double median = others[others.size() / 2];
    int& streak = slow_streak_[size_t(q)];
    streak = per_sample[size_t(q)] > 2 * median ? streak + 1 : 0;
    if (streak == 3)
      log::warn(comm_.rank_name(q) +
                " is slow: for 3 logging intervals its steps "
                "took " +
                log::format("%.1f", per_sample[size_t(q)] / median) +
                "x the time per "
                "sample of the other ranks' median, and every rank waits for it. Check its node "
                "(load, CPU throttling, a noisy neighbour, a slow disk).");
  }
}

void IntervalMeter::warn_divergence(const LossStats& s, double lr) {
  const double loss = s.count > 0 ? s.loss_sum / double(s.count) : 0;
  if (divergence_warned_ || loss <= 1000 * chance_loss_) return;
  divergence_warned_ = true;
  log::warn("the training loss is " + log::format("%.3g", loss) + ", far above chance level (" +
            log::format("%.2f", chance_loss_) +
            "): training is diverging; lower "
            "train.optimizer.lr (now " +
            log::format("%g", lr) + ")");
}

}  // namespace dpt
