// The training loop: epochs of data-parallel steps with interval metrics, validation,
// checkpoints and stop signals, and the finish (final checkpoint, test). Set-up: trainer_setup.cpp.
#include "trainer/trainer.h"

#include <algorithm>

#include "comm/agree.h"
#include "core/trace.h"
#include "trainer/log.h"
#include "trainer/run_state.h"
#include "trainer/signals.h"
#include "trainer/train_step.h"

namespace dpt {

namespace {

// The one place a metrics.csv row (and the numbers of the console lines) is made.
MetricsRow metrics_row(int64_t epoch, int64_t step, const LossStats& sums, double lr,
                       double seconds, double allreduce, double elapsed, int64_t skipped) {
  MetricsRow row;
  row.epoch = epoch;
  row.step = step;
  const double n = double(std::max<int64_t>(sums.count, 1));
  row.loss = sums.loss_sum / n;
  row.accuracy = double(sums.correct) / n;
  row.lr = lr;
  row.images_per_sec = double(sums.count) / std::max(seconds, 1e-9);
  row.allreduce_sec = allreduce;
  row.elapsed_sec = elapsed;
  row.skipped_steps = skipped;
  return row;
}

}  // namespace

void Trainer::sync_batch_norm(Run& r) {
  if (comm_.size() == 1 || model_->state().size() == 0) return;
  // Only the moving statistics differ between ranks; frozen weights (trainable: false) are
  // kept as they are, since an average of equal values need not round back to the value.
  model_->download();
  std::vector<float> frozen;
  auto frozen_params = [&](auto&& visit) {
    for (const Param& p : model_->params())
      if (!p.grad && p.spec.name.rfind("moving_", 0) != 0) visit(p);
  };
  frozen_params(
      [&](const Param& p) { frozen.insert(frozen.end(), p.host_value, p.host_value + p.size()); });
  Tensor& s = model_->state();
  Communicator& c = r.grad_comm ? *r.grad_comm : comm_;
  c.allreduce_sum(s.data(), size_t(s.size()))->wait();
  model_->download();
  Tensor& h = model_->host_state();
  const float inv = 1.0f / float(comm_.size());
  for (int64_t i = 0; i < h.size(); ++i) h.data()[i] *= inv;
  size_t at = 0;
  frozen_params([&](const Param& p) {
    std::copy(frozen.begin() + long(at), frozen.begin() + long(at + size_t(p.size())),
              p.host_value);
    at += size_t(p.size());
  });
  model_->upload();
}

bool Trainer::stop_requested() {
  double flag = stop_signal() ? 1.0 : 0.0;
  comm_.allreduce_sum_f64(&flag, 1);  // every rank stops at the same step
  return flag > 0;
}

void Trainer::save_checkpoint(Run& r) {
  trace::Span span("checkpoint", "save checkpoint");
  sync_batch_norm(r);
  r.pos.world_size = comm_.size();
  // Rank 0 writes; every rank learns whether that worked (and no rank leaves, or exits on a
  // signal, before the file is complete).
  agree(comm_, [&] {
    if (comm_.rank() != 0) return;
    r.summary.last_checkpoint = write_checkpoint(cfg_.checkpoint.dir, *model_, *r.optimizer, r.pos,
                                                 cfg_.resolved, int(cfg_.checkpoint.keep));
    log::info("Checkpoint: " + r.summary.last_checkpoint);
  });
  r.last_checkpoint_step = r.pos.global_step;
}

void Trainer::flush_interval(Run& r, int64_t epoch, int64_t s) {
  const int64_t steps = r.plan->steps_per_epoch();
  const IntervalMeter::Totals t = r.meter->flush(r.lr);
  r.pos.epoch_stats.add(t.stats);
  r.epoch.skipped += t.skipped;
  if (r.csv && (t.stats.count > 0 || t.skipped > 0)) {
    const MetricsRow row = metrics_row(epoch + 1, r.pos.global_step, t.stats, r.lr, t.seconds,
                                       t.allreduce_sec, since(r.start), t.skipped);
    r.csv->write(row);
    if (r.tensorboard) r.tensorboard->write_interval(row);
  }
  r.meter->restart();
  // Keras' bar: the epoch's remaining time from its pace so far.
  const MetricsRow so_far = metrics_row(0, 0, r.pos.epoch_stats, 0, 1, 0, 0, 0);
  const double pace =
      since(r.epoch.start) / double(std::max<int64_t>(s + 1 - r.epoch.first_step, 1));
  log::progress(std::to_string(s + 1) + "/" + std::to_string(steps) + " " + log::bar(s + 1, steps) +
                " - ETA: " + log::eta(pace * double(steps - s - 1)) +
                " - accuracy: " + log::format("%.4f", so_far.accuracy) +
                " - loss: " + log::format("%.4f", so_far.loss));
}

// A step every rank found non-finite (Note [non-finite verdict]): abort or skip it.
void Trainer::record_non_finite(Run& r, int64_t epoch, int64_t s) {
  const std::string first = first_non_finite_gradient(*model_);
  const std::string what = "non-finite loss or gradient (NaN or infinity) at epoch " +
                           std::to_string(epoch + 1) + ", step " + std::to_string(s + 1) +
                           " (global step " + std::to_string(r.pos.global_step) + ")" +
                           (first.empty() ? "" : ", first in " + first);
  r.guard->after_non_finite_step(what, r.lr, comm_);
  r.meter->add_skipped();
}

// What a taken step leaves behind: its verdict (Note [non-finite verdict]), its sums for the
// interval, and lookahead's sync when one is due.
void Trainer::account_step(Run& r, const StepResult& res, int64_t epoch, int64_t s) {
  if (res.finite) {
    r.guard->after_finite_step();
    r.meter->add_step(res.stats);
  } else {
    record_non_finite(r, epoch, s);
  }
  r.meter->add_allreduce(res.allreduce_sec);
  r.epoch.allreduce_sec += res.allreduce_sec;
  if (r.lookahead)
    r.lookahead->after_step(model_->weights().data(), r.pos.global_step, r.plan->steps_per_epoch(),
                            cfg_.train.epochs);
}

// One step: the batch, the data-parallel update, the interval metrics, a stop signal or a
// checkpoint that is due. False: stopped by a signal (checkpoint written).
bool Trainer::step(Run& r, int64_t epoch, int64_t s) {
  const TrainConfig& tc = cfg_.train;
  const DataPlan& plan = *r.plan;
  const int rank = comm_.rank();
  const int64_t steps = plan.steps_per_epoch(), global_step = epoch * steps + s;
  if (r.trace) r.trace->before_step(global_step + 1);
  trace::Span step_span("step", trace::on() ? "step " + std::to_string(global_step + 1) : "");
  const auto t0 = Clock::now();
  r.lr = learning_rate(tc.schedule, tc.optimizer.lr, global_step, steps, tc.epochs);
  const Batch* batch = nullptr;
  if (plan.count_at(rank, s) > 0) {
    trace::Span span("data", "wait for batch");
    batch = &r.batches->next();
  }
  DPT_ASSERT(!batch || batch->n == plan.count_at(rank, s));
  r.guard->before_step();
  const StepContext ctx{Mode::kTrain, tc.seed, uint32_t(rank), uint64_t(global_step)};
  const StepResult res =
      train_step(*model_, *r.reducer, *r.optimizer, batch, plan.global_count_at(s), ctx,
                 float(r.lr), float(tc.label_smoothing));
  r.pos.epoch = epoch;
  r.pos.step_in_epoch = s + 1;
  r.pos.global_step = global_step + 1;
  account_step(r, res, epoch, s);
  const bool last = s + 1 == steps;
  const bool ckpt_due = cfg_.checkpoint.every_steps > 0 &&
                        r.pos.global_step % cfg_.checkpoint.every_steps == 0 && !last;
  const auto wait_start = Clock::now();
  const bool stop = stop_requested();
  r.meter->add_busy(since(t0) - res.allreduce_sec - since(wait_start), res.stats.count);
  if ((s + 1) % tc.log_every_steps == 0 || last || ckpt_due || stop) flush_interval(r, epoch, s);
  if (stop) {
    log::info("Stop signal " + std::to_string(stop_signal()) + " received: checkpointing at step " +
              std::to_string(r.pos.global_step));
    r.batches->stop();
  }
  if (stop || ckpt_due) save_checkpoint(r);
  return !stop;
}

bool Trainer::run_epoch(Run& r, int64_t epoch, int64_t first_step) {
  const TrainConfig& tc = cfg_.train;
  const DataPlan& plan = *r.plan;
  const int rank = comm_.rank();
  const int64_t steps = plan.steps_per_epoch();
  const int64_t my_steps =
      (int64_t(plan.train_indices().size()) + plan.local_batch() - 1) / plan.local_batch();
  std::vector<int64_t> order = epoch_order(int64_t(plan.train_indices().size()), cfg_.data.shuffle,
                                           tc.seed, uint32_t(rank), uint64_t(epoch));
  for (auto& i : order) i = plan.train_indices()[size_t(i)];
  r.batches->start(std::move(order), plan.local_batch(), std::min(first_step, my_steps), my_steps,
                   AugmentSpec{cfg_.data.random_crop_pad, cfg_.data.horizontal_flip, false, 0, 0,
                               cfg_.data.reflect_fill},
                   tc.seed, uint32_t(rank), uint64_t(epoch));
  log::info("Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(tc.epochs));
  if (first_step == 0) r.pos.epoch_stats = LossStats{};
  r.epoch = Run::Epoch{Clock::now(), first_step, 0, 0};
  r.meter->restart();
  for (int64_t s = first_step; s < steps; ++s) {
    const bool go_on = step(r, epoch, s);
    if (r.trace) r.trace->after_step(comm_, r.pos.global_step);
    if (!go_on) return false;
    if (options_.stop_after_trace && r.trace && r.trace->written()) return false;
  }
  r.pos.epoch = epoch + 1;
  r.pos.step_in_epoch = 0;
  end_of_epoch(r, epoch, since(r.epoch.start));
  return true;
}

bool Trainer::should_stop_early(Run& r, double v) {
  const EarlyStopping& es = cfg_.train.early_stopping;
  if (es.monitor == Monitor::kNone) return false;
  const std::string name = monitor_name(es.monitor);
  DPT_CHECK(v >= 0,
            "train.early_stopping.monitor is " << name << " but there is no validation split");
  const bool higher = higher_is_better(es.monitor);
  if (es.target != 0 && (higher ? v >= es.target : v <= es.target)) {
    log::info("Early stopping: " + name + " reached " + log::format("%.4f", v));
    return true;
  }
  if (es.patience <= 0) return false;
  const bool better =
      higher ? v > r.pos.best_metric + es.min_delta : v < r.pos.best_metric - es.min_delta;
  if (!r.pos.has_best || better) {
    r.pos.best_metric = v;
    r.pos.has_best = 1;
    r.pos.since_best = 0;
    return false;
  }
  if (++r.pos.since_best < es.patience) return false;
  log::info("Early stopping: " + name + " did not improve for " + std::to_string(es.patience) +
            " epochs");
  return true;
}

namespace {
double monitored(Monitor m, const MetricsRow& row) {
  switch (m) {
    case Monitor::kAccuracy:
      return row.accuracy;
    case Monitor::kLoss:
      return row.loss;
    case Monitor::kValAccuracy:
      return row.val_accuracy;
    case Monitor::kValLoss:
      return row.val_loss;
    case Monitor::kNone:
      break;
  }
  return row.val_loss;
}
}  // namespace

void Trainer::end_of_epoch(Run& r, int64_t epoch, double seconds) {
  const DataPlan& plan = *r.plan;
  const int64_t steps = plan.steps_per_epoch();
  // Note [lookahead]: the epoch ends on the slow weights (evaluated and checkpointed).
  if (r.lookahead) r.lookahead->at_epoch_end(model_->weights().data(), r.pos.global_step, steps);
  sync_batch_norm(r);
  const double lr = learning_rate(cfg_.train.schedule, cfg_.train.optimizer.lr,
                                  r.pos.global_step - 1, steps, cfg_.train.epochs);
  MetricsRow row = metrics_row(epoch + 1, r.pos.global_step, r.pos.epoch_stats, lr, seconds,
                               r.epoch.allreduce_sec, 0, r.epoch.skipped);
  std::string line = std::to_string(steps) + "/" + std::to_string(steps) + " - " +
                     log::format("%.0f", seconds) + "s - " +
                     log::format("%.0f", 1000.0 * seconds / double(steps)) +
                     "ms/step - accuracy: " + log::format("%.4f", row.accuracy) +
                     " - loss: " + log::format("%.4f", row.loss);
  if (plan.global_val_samples() > 0) {
    trace::Span span("eval", "validation");
    const EvalResult val =
        evaluate(*model_, plan.train_data(), plan.val_indices(), plan.local_batch(), comm_, nullptr,
                 nullptr, cfg_.eval.tta, r.val_batches.get());
    row.val_loss = val.loss;
    row.val_accuracy = val.accuracy;
    line += " - val_accuracy: " + log::format("%.4f", val.accuracy) +
            " - val_loss: " + log::format("%.4f", val.loss);
  }
  row.elapsed_sec = since(r.start);
  line += " - " + log::format("%.0f", row.images_per_sec) + " img/s";
  if (r.epoch.skipped > 0) line += " - " + std::to_string(r.epoch.skipped) + " steps skipped";
  log::info(line);
  if (cfg_.eval.test_every_epoch) {  // bench/time_to_accuracy.sh reads this line
    const EvalResult t = evaluate(*model_, r.test_data, r.test_idx, plan.local_batch(), comm_,
                                  nullptr, nullptr, cfg_.eval.tta, r.test_batches.get());
    log::info("Epoch test: epoch " + std::to_string(epoch + 1) + " - accuracy: " +
              log::format("%.4f", t.accuracy) + " - loss: " + log::format("%.4f", t.loss) +
              " - training time " + log::format("%.1f", r.epoch_time_total + seconds) +
              " s - since start " + log::format("%.1f", since(r.start)) + " s");
  }
  if (r.csv) r.csv->write(row);
  if (r.tensorboard) r.tensorboard->write_epoch(row);
  r.summary.epochs_run += 1;
  r.summary.images_per_sec += row.images_per_sec;
  r.epoch_time_total += seconds;
  r.summary.samples_last_epoch = r.pos.epoch_stats.count;

  r.stop_early = should_stop_early(r, monitored(cfg_.train.early_stopping.monitor, row));
  const int64_t every = cfg_.checkpoint.every_epochs;
  if (epoch + 1 >= cfg_.train.epochs || r.stop_early) {
    r.pos.finished = 1;  // the checkpoint written now is the final one: mark it (Resume rules)
    r.pos.early_stopped = r.stop_early ? 1 : 0;
  }
  if (every > 0 && (epoch + 1) % every == 0) save_checkpoint(r);
}

void Trainer::finish(Run& r) {
  const int rank = comm_.rank(), world = comm_.size();
  r.batches->stop();
  r.pos.finished = 1;
  r.pos.early_stopped = r.stop_early ? 1 : 0;
  if (r.last_checkpoint_step != r.pos.global_step) save_checkpoint(r);
  const int64_t epochs = std::max<int64_t>(r.summary.epochs_run, 1);
  r.summary.images_per_sec /= double(epochs);
  r.summary.seconds_per_epoch = r.epoch_time_total / double(epochs);
  r.summary.skipped_steps = r.pos.skipped_steps;
  r.summary.test = evaluate(*model_, r.test_data, r.test_idx, r.plan->local_batch(), comm_, nullptr,
                            nullptr, cfg_.eval.tta, r.test_batches.get());
  log::info("Test: " + std::to_string(r.summary.test.count) +
            " samples - accuracy: " + log::format("%.4f", r.summary.test.accuracy) +
            " - loss: " + log::format("%.4f", r.summary.test.loss));
  log::info("Throughput: " + log::format("%.0f", r.summary.images_per_sec) +
            " train images/s (mean over " + std::to_string(r.summary.epochs_run) + " epochs), " +
            log::format("%.1f", r.summary.seconds_per_epoch) + " s/epoch");
  agree(comm_, [&] {
    if (rank == 0) write_summary_file(cfg_.run_dir, cfg_.name, world, r.summary);
    if (r.tensorboard)
      r.tensorboard->write_test(r.summary.test.accuracy, r.summary.test.loss, r.pos.epoch);
  });
}

TrainSummary Trainer::run() {
  run_ = std::make_unique<Run>();
  Run& r = *run_;
  if (!setup(r)) return r.summary;
  for (int64_t epoch = r.pos.epoch; epoch < cfg_.train.epochs && !r.stop_early; ++epoch) {
    const int64_t first = epoch == r.pos.epoch ? r.pos.step_in_epoch : 0;
    if (!run_epoch(r, epoch, first)) {
      if (r.trace) r.trace->close(comm_);
      r.summary.stopped_by_signal = !(options_.stop_after_trace && r.trace && r.trace->written());
      return r.summary;
    }
  }
  if (r.trace) r.trace->close(comm_);
  finish(r);
  return r.summary;
}

}  // namespace dpt
