// The training loop: prefetched batches, data-parallel steps, interval metrics, validation,
// checkpoints (per epoch, per N steps, on SIGTERM/SIGUSR1), resume, early stopping, final test.
#include "trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "comm/agree.h"
#include "comm/gradient_reducer.h"
#include "data/batches.h"
#include "trainer/data_plan.h"
#include "trainer/device_batch.h"
#ifdef DPT_WITH_CUDA
#include "comm/nccl_communicator.h"
#include "models/kernels/cuda/cuda_context.h"
#endif
#include "trainer/log.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizers.h"
#include "trainer/run_files.h"
#include "trainer/signals.h"
#include "trainer/train_step.h"

namespace dpt {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string bar(int64_t done, int64_t total) {
  const int width = 30;
  const int filled = int(width * done / std::max<int64_t>(total, 1));
  std::string b = "[" + std::string(size_t(filled), '=');
  if (filled < width) b += ">" + std::string(size_t(width - filled - 1), '.');
  return b + "]";
}

}  // namespace

struct Trainer::Run {
  std::unique_ptr<DataPlan> plan;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<Prefetcher> prefetch;
  std::unique_ptr<MetricsCsv> csv;
  std::vector<std::string> notes;  // said once the log is open
  TrainPosition pos;
  TrainSummary summary;
  Clock::time_point start = Clock::now();
  double epoch_time_total = 0;
  double epoch_allreduce = 0;  // seconds waiting for gradient all-reduces this epoch
  int64_t last_checkpoint_step = -1;
  bool stop_early = false;
  std::unique_ptr<Communicator> nccl;  // device gradients on several GPUs
  Communicator* grad_comm = nullptr;   // all-reduces gradients and BatchNorm statistics
#ifdef DPT_WITH_CUDA
  std::unique_ptr<DeviceBatch> device_batch;
#endif
};

Trainer::Trainer(Config cfg, Communicator& comm, std::string resume)
    : cfg_(std::move(cfg)), comm_(comm), resume_(std::move(resume)) {
#ifndef DPT_WITH_CUDA
  DPT_CHECK(cfg_.train.backend == "cpu",
            "train.backend is cuda but this dptrain was built without CUDA (the CUDA toolkit, "
            "cuDNN or NCCL was not found at build time); use backend: cpu or rebuild");
#endif
  model_ = std::make_unique<Model>(cfg_.model, cfg_.name);
  model_->initialize(cfg_.train.seed);
}

Trainer::~Trainer() = default;

void Trainer::check_same_model() {
  if (comm_.size() == 1) return;
  // Before anything else: broadcasting weights of different sizes would corrupt memory or hang.
  std::string mine;
  for (const auto& s : model_->signature()) mine += s + "\n";
  uint64_t len = mine.size();
  comm_.broadcast(&len, sizeof len, 0);
  std::string root(len, '\0');
  if (comm_.rank() == 0) root = mine;
  comm_.broadcast(root.data(), len, 0);
  agree(comm_, [&] {
    if (root == mine) return;
    std::istringstream a(root), b(mine);
    std::string la, lb;
    for (int i = 0;; ++i) {
      const bool ga = bool(std::getline(a, la)), gb = bool(std::getline(b, lb));
      if (!ga || !gb || la != lb)
        DPT_FAIL("this rank's model differs from rank 0's at layer " << i << ": rank 0 has '"
                 << (ga ? la : "<no layer>") << "', this rank has '" << (gb ? lb : "<no layer>")
                 << "'. Every rank must run the same config");
    }
  });
}

void Trainer::broadcast_weights() {
  if (comm_.size() == 1) return;
  comm_.broadcast(model_->weights().data(), size_t(model_->weights().size()) * sizeof(float), 0);
  if (model_->state().size() > 0)
    comm_.broadcast(model_->state().data(), size_t(model_->state().size()) * sizeof(float), 0);
}

void Trainer::sync_batch_norm() {
  if (comm_.size() == 1 || model_->state().size() == 0) return;
  Tensor& s = model_->state();
  Communicator& c = run_ && run_->grad_comm ? *run_->grad_comm : comm_;
  c.allreduce_sum(s.data(), size_t(s.size()))->wait();
  model_->download();
  Tensor& h = model_->host_state();
  const float inv = 1.0f / float(comm_.size());
  for (int64_t i = 0; i < h.size(); ++i) h.data()[i] *= inv;
  model_->upload();
}

bool Trainer::stop_requested() {
  double flag = stop_signal() ? 1.0 : 0.0;
  comm_.allreduce_sum_f64(&flag, 1);  // every rank stops at the same step
  return flag > 0;
}

bool Trainer::resume_from_checkpoint(Run& r) {
  if (resume_.empty()) return false;
  std::string path = resume_;
  if (resume_ == "auto") {
    std::vector<std::string> skipped;
    path = newest_checkpoint(cfg_.checkpoint.dir, &skipped);
    for (const auto& s : skipped)
      r.notes.push_back("Resume: skipping '" + s + "': incomplete or unreadable");
    if (path.empty()) {
      r.notes.push_back("Resume: no checkpoint in " + cfg_.checkpoint.dir + "; starting fresh");
      return false;
    }
  }
  r.pos = read_checkpoint(path, *model_, r.optimizer.get());
  DPT_CHECK(r.pos.seed == cfg_.train.seed,
            "checkpoint '" << path << "' was trained with train.seed " << r.pos.seed
                           << " but the config says " << cfg_.train.seed << "; use the same seed");
  r.notes.push_back("Resume: from " + path + " at epoch " + std::to_string(r.pos.epoch + 1) +
                    ", step " + std::to_string(r.pos.global_step));
  if (r.pos.world_size != comm_.size()) {
    r.notes.push_back("Resume: the checkpoint was written by " + std::to_string(r.pos.world_size) +
                      " rank(s), this run has " + std::to_string(comm_.size()) +
                      ": the data order differs from an uninterrupted run");
    if (r.pos.step_in_epoch > 0) {
      r.notes.push_back("Resume: restarting epoch " + std::to_string(r.pos.epoch + 1) +
                        " from its first step (its position is per world size)");
      r.pos.global_step -= r.pos.step_in_epoch;
      r.pos.step_in_epoch = 0;
    }
  }
  r.last_checkpoint_step = r.pos.global_step;
  return true;
}

void Trainer::save_checkpoint(Run& r) {
  sync_batch_norm();
  r.pos.world_size = comm_.size();
  // Rank 0 writes; every rank learns whether that worked (and no rank leaves, or exits on a
  // signal, before the file is complete).
  agree(comm_, [&] {
    if (comm_.rank() != 0) return;
    r.summary.last_checkpoint = write_checkpoint(cfg_.checkpoint.dir, *model_, *r.optimizer,
                                                 r.pos, cfg_.resolved, int(cfg_.checkpoint.keep));
    log::info("Checkpoint: " + r.summary.last_checkpoint);
  });
  r.last_checkpoint_step = r.pos.global_step;
}

bool Trainer::run_epoch(Run& r, int64_t epoch, int64_t first_step) {
  const TrainConfig& tc = cfg_.train;
  const DataPlan& plan = *r.plan;
  const int rank = comm_.rank();
  const int64_t steps = plan.steps_per_epoch();
  const int64_t my_steps =
      (int64_t(plan.train_indices().size()) + plan.local_batch() - 1) / plan.local_batch();
  std::vector<int64_t> order = epoch_order(int64_t(plan.train_indices().size()),
                                           cfg_.data.shuffle, tc.seed, uint32_t(rank),
                                           uint64_t(epoch));
  for (auto& i : order) i = plan.train_indices()[size_t(i)];
  r.prefetch->start(std::move(order), plan.local_batch(), std::min(first_step, my_steps),
                    my_steps, AugmentSpec{cfg_.data.random_crop_pad, cfg_.data.horizontal_flip},
                    tc.seed, uint32_t(rank), uint64_t(epoch));
  log::info("Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(tc.epochs));
  if (first_step == 0) r.pos.epoch_sums[0] = r.pos.epoch_sums[1] = r.pos.epoch_sums[2] = 0;
  r.epoch_allreduce = 0;

  const auto epoch_start = Clock::now();
  auto interval_start = epoch_start;
  double interval[3] = {0, 0, 0};  // this rank's loss, correct, count since the last flush
  double interval_allreduce = 0, lr = 0;
  // Sums the interval over ranks (one small all-reduce), adds it to the epoch and logs it.
  auto flush = [&](int64_t step) {
    comm_.allreduce_sum_f64(interval, 3);
    for (int k = 0; k < 3; ++k) r.pos.epoch_sums[k] += interval[k];
    if (r.csv && interval[2] > 0) {
      MetricsRow row;
      row.epoch = std::to_string(epoch + 1);
      row.step = r.pos.global_step;
      row.loss = interval[0] / interval[2];
      row.accuracy = interval[1] / interval[2];
      row.lr = lr;
      row.images_per_sec = interval[2] / std::max(since(interval_start), 1e-9);
      row.allreduce_sec = interval_allreduce;
      row.elapsed_sec = since(r.start);
      r.csv->write(row);
    }
    interval[0] = interval[1] = interval[2] = interval_allreduce = 0;
    interval_start = Clock::now();
    const double n = std::max(r.pos.epoch_sums[2], 1.0);
    log::progress(std::to_string(step + 1) + "/" + std::to_string(steps) + " " +
                  bar(step + 1, steps) + " - accuracy: " + fmt("%.4f", r.pos.epoch_sums[1] / n) +
                  " - loss: " + fmt("%.4f", r.pos.epoch_sums[0] / n));
  };

  for (int64_t step = first_step; step < steps; ++step) {
    const int64_t global_step = epoch * steps + step;
    lr = learning_rate(tc.schedule, tc.optimizer.lr, global_step, steps, tc.epochs);
    const Batch* batch = nullptr;
    if (plan.count_at(rank, step) > 0) {
      batch = &r.prefetch->next();
      DPT_ASSERT(batch->n == plan.count_at(rank, step));
#ifdef DPT_WITH_CUDA
      if (r.device_batch) batch = &r.device_batch->upload(*batch);
#endif
    }
    const StepContext ctx{Mode::kTrain, tc.seed, uint32_t(rank), uint64_t(global_step)};
    const StepResult res = train_step(*model_, *r.reducer, *r.optimizer, batch,
                                      plan.global_count_at(step), ctx, float(lr));
    interval[0] += res.stats.loss_sum;
    interval[1] += double(res.stats.correct);
    interval[2] += double(res.stats.count);
    interval_allreduce += res.allreduce_sec;
    r.epoch_allreduce += res.allreduce_sec;
    r.pos.epoch = epoch;
    r.pos.step_in_epoch = step + 1;
    r.pos.global_step = global_step + 1;

    const bool last = step + 1 == steps;
    const bool ckpt_due = cfg_.checkpoint.every_steps > 0 &&
                          r.pos.global_step % cfg_.checkpoint.every_steps == 0 && !last;
    const bool stop = stop_requested();
    if ((step + 1) % tc.log_every_steps == 0 || last || ckpt_due || stop) flush(step);
    if (stop) {
      log::info("Stop signal " + std::to_string(stop_signal()) + " received: checkpointing at step " +
                std::to_string(r.pos.global_step));
      r.prefetch->stop();
      save_checkpoint(r);
      return false;
    }
    if (ckpt_due) save_checkpoint(r);
  }
  const double seconds = since(epoch_start);
  r.pos.epoch = epoch + 1;
  r.pos.step_in_epoch = 0;
  end_of_epoch(r, epoch, seconds);
  return true;
}

bool Trainer::should_stop_early(Run& r, double v) {
  const EarlyStopping& es = cfg_.train.early_stopping;
  if (es.monitor.empty()) return false;
  DPT_CHECK(v >= 0, "train.early_stopping.monitor is " << es.monitor
                                                       << " but there is no validation split");
  const bool higher = es.monitor.find("accuracy") != std::string::npos;
  if (es.target != 0 && (higher ? v >= es.target : v <= es.target)) {
    log::info("Early stopping: " + es.monitor + " reached " + fmt("%.4f", v));
    return true;
  }
  if (es.patience <= 0) return false;
  const bool better = higher ? v > r.pos.best_metric + es.min_delta
                             : v < r.pos.best_metric - es.min_delta;
  if (!r.pos.has_best || better) {
    r.pos.best_metric = v;
    r.pos.has_best = 1;
    r.pos.since_best = 0;
    return false;
  }
  if (++r.pos.since_best < es.patience) return false;
  log::info("Early stopping: " + es.monitor + " did not improve for " +
            std::to_string(es.patience) + " epochs");
  return true;
}

void Trainer::end_of_epoch(Run& r, int64_t epoch, double seconds) {
  sync_batch_norm();
  const DataPlan& plan = *r.plan;
  const int64_t steps = plan.steps_per_epoch();
  const double* sums = r.pos.epoch_sums;
  MetricsRow row;
  row.epoch = std::to_string(epoch + 1);
  row.step = r.pos.global_step;
  row.loss = sums[0] / std::max(sums[2], 1.0);
  row.accuracy = sums[1] / std::max(sums[2], 1.0);
  row.lr = learning_rate(cfg_.train.schedule, cfg_.train.optimizer.lr, r.pos.global_step - 1,
                         steps, cfg_.train.epochs);
  row.images_per_sec = sums[2] / seconds;
  row.allreduce_sec = r.epoch_allreduce;
  std::string line = std::to_string(steps) + "/" + std::to_string(steps) + " - " +
                     fmt("%.0f", seconds) + "s - " +
                     fmt("%.0f", 1000.0 * seconds / double(steps)) + "ms/step - accuracy: " +
                     fmt("%.4f", row.accuracy) + " - loss: " + fmt("%.4f", row.loss);
  if (plan.global_val_samples() > 0) {
    const EvalResult val =
        evaluate(*model_, plan.train_data(), plan.val_indices(), plan.local_batch(), comm_);
    row.val_loss = val.loss;
    row.val_accuracy = val.accuracy;
    line += " - val_accuracy: " + fmt("%.4f", val.accuracy) + " - val_loss: " + fmt("%.4f", val.loss);
  }
  row.elapsed_sec = since(r.start);
  line += " - " + fmt("%.0f", row.images_per_sec) + " img/s";
  log::info(line);
  if (r.csv) r.csv->write(row);
  r.summary.epochs_run += 1;
  r.summary.images_per_sec += row.images_per_sec;
  r.epoch_time_total += seconds;
  r.summary.samples_last_epoch = int64_t(sums[2]);

  const std::string& m = cfg_.train.early_stopping.monitor;
  const double v = m == "accuracy" ? row.accuracy : m == "loss" ? row.loss
                   : m == "val_accuracy" ? row.val_accuracy : row.val_loss;
  r.stop_early = should_stop_early(r, v);
  const int64_t every = cfg_.checkpoint.every_epochs;
  if (every > 0 && (epoch + 1) % every == 0) save_checkpoint(r);
}

TrainSummary Trainer::run() {
  const TrainConfig& tc = cfg_.train;
  const int rank = comm_.rank(), world = comm_.size();
  run_ = std::make_unique<Run>();
  Run& r = *run_;
  r.pos.seed = tc.seed;
  const Device device = tc.backend == "cuda" ? Device::kCuda : Device::kCpu;
  check_same_model();
  // Set-up that reads files but makes no collective call: any rank's failure here is agreed
  // on and reported once (Note [agreeing on errors]).
  agree(comm_, [&] {
#ifdef DPT_WITH_CUDA
    // Before any GPU allocation: the rank's GPU is its local rank.
    if (device == Device::kCuda) cuda::select_device(comm_.local_rank(), comm_.local_size());
#endif
    r.optimizer = make_optimizer(tc.optimizer, model_->num_trainable(), device);
    // Resume before touching the run directory: a failed resume changes nothing there.
    resume_from_checkpoint(r);
    r.plan = std::make_unique<DataPlan>(cfg_.data, tc.batch_size, rank, world);
    const ShardData& data = r.plan->train_data();
    const Shape data_shape{data.height, data.width, data.channels};
    DPT_CHECK(model_->input_shape() == data_shape,
              "config model.input is " << shape_str(model_->input_shape()) << " but the "
              << cfg_.data.dataset << " shards hold images of " << shape_str(data_shape));
    DPT_CHECK(model_->num_classes() == data.classes,
              "the model's last layer has " << model_->num_classes() << " units but "
              << cfg_.data.dataset << " has " << data.classes << " classes");
  });
  agree(comm_, [&] {
    if (rank != 0) return;
    make_directories(cfg_.run_dir);
    std::ofstream(cfg_.run_dir + "/config.yaml") << cfg_.resolved;
    r.csv = std::make_unique<MetricsCsv>(cfg_.run_dir + "/metrics.csv");
  });
  log::init(rank, rank == 0 ? cfg_.run_dir + "/log.txt" : "");
  for (const auto& n : r.notes) log::info(n);
  broadcast_weights();  // rank 0's initial (or resumed) values on every rank
  r.grad_comm = &comm_;
#ifdef DPT_WITH_CUDA
  if (device == Device::kCuda) {
    model_->to_device(Device::kCuda);
    if (world > 1) {
      r.nccl = make_nccl_communicator(comm_);
      r.grad_comm = r.nccl.get();
    }
    log::info("GPUs: rank 0 uses GPU " + std::to_string(cuda::current_device()) +
              " (each rank takes the GPU of its local rank); gradients all-reduced with " +
              r.grad_comm->backend());
  }
#endif
  const ShardData& data = r.plan->train_data();
  std::string split = std::to_string(r.plan->batch_of(0));
  if (tc.batch_size % world != 0) split += "/" + std::to_string(r.plan->batch_of(world - 1));
  log::info("dptrain: " + cfg_.name + " on " + std::to_string(world) + " rank(s) (" +
            comm_.backend() + "), " + std::to_string(r.plan->global_train_samples()) +
            " train / " + std::to_string(r.plan->global_val_samples()) +
            " validation samples, global batch " + std::to_string(tc.batch_size) + " (" + split +
            " per rank), " + std::to_string(r.plan->steps_per_epoch()) + " steps per epoch");
  r.reducer = std::make_unique<GradientReducer>(*r.grad_comm, *model_, int64_t(tc.bucket_mb * (1 << 20)),
                                                int64_t(tc.first_bucket_mb * (1 << 20)), tc.overlap);
  r.prefetch = std::make_unique<Prefetcher>(data, r.plan->local_batch(), int(cfg_.data.prefetch));
#ifdef DPT_WITH_CUDA
  if (device == Device::kCuda)
    r.device_batch = std::make_unique<DeviceBatch>(r.plan->local_batch(), model_->input_shape());
#endif
  install_stop_signals();

  for (int64_t epoch = r.pos.epoch; epoch < tc.epochs && !r.stop_early; ++epoch) {
    const int64_t first = epoch == r.pos.epoch ? r.pos.step_in_epoch : 0;
    if (!run_epoch(r, epoch, first)) {
      r.summary.stopped_by_signal = true;
      return r.summary;
    }
  }
  r.prefetch->stop();
  if (r.last_checkpoint_step != r.pos.global_step) save_checkpoint(r);
  const int64_t epochs = std::max<int64_t>(r.summary.epochs_run, 1);
  r.summary.images_per_sec /= double(epochs);
  r.summary.seconds_per_epoch = r.epoch_time_total / double(epochs);

  std::vector<int64_t> test_idx;
  const ShardData test = load_test_slice(cfg_.data, rank, world, &test_idx);
  r.summary.test = evaluate(*model_, test, test_idx, r.plan->local_batch(), comm_);
  log::info("Test: " + std::to_string(r.summary.test.count) + " samples - accuracy: " +
            fmt("%.4f", r.summary.test.accuracy) + " - loss: " + fmt("%.4f", r.summary.test.loss));
  log::info("Throughput: " + fmt("%.0f", r.summary.images_per_sec) + " train images/s (mean over " +
            std::to_string(r.summary.epochs_run) + " epochs), " +
            fmt("%.1f", r.summary.seconds_per_epoch) + " s/epoch");
  if (rank == 0) {
    std::ofstream s(cfg_.run_dir + "/summary.yaml");
    s << "name: " << cfg_.name << "\nworld_size: " << world << "\nepochs_run: "
      << r.summary.epochs_run << "\ntest_samples: " << r.summary.test.count
      << "\ntest_accuracy: " << r.summary.test.accuracy << "\ntest_loss: " << r.summary.test.loss
      << "\nimages_per_sec: " << r.summary.images_per_sec
      << "\nseconds_per_epoch: " << r.summary.seconds_per_epoch
      << "\ncheckpoint: " << r.summary.last_checkpoint << "\n";
  }
  return r.summary;
}

}  // namespace dpt
