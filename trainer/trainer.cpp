// The training loop: prefetched batches, forward, loss, backward with bucketed all-reduce,
// optimizer step, interval metrics, validation, early stopping, final test.
#include "trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "comm/gradient_reducer.h"
#include "data/batches.h"
#include "trainer/data_plan.h"
#include "trainer/log.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizers.h"
#include "trainer/run_files.h"
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

bool improved(const std::string& monitor, double now, double best, double delta) {
  const bool higher_better = monitor.find("accuracy") != std::string::npos;
  return higher_better ? now > best + delta : now < best - delta;
}

}  // namespace

Trainer::Trainer(Config cfg, Communicator& comm) : cfg_(std::move(cfg)), comm_(comm) {
  DPT_CHECK(cfg_.train.backend == "cpu",
            "train.backend '" << cfg_.train.backend << "' is not available in this build; "
                              "use backend: cpu");
  model_ = std::make_unique<Model>(cfg_.model, cfg_.name);
  model_->initialize(cfg_.train.seed);
}

void Trainer::sync_start() {
  if (comm_.size() == 1) return;
  // Signatures first: broadcasting weights of different sizes would corrupt memory or hang.
  std::string mine;
  for (const auto& s : model_->signature()) mine += s + "\n";
  uint64_t len = mine.size();
  comm_.broadcast(&len, sizeof len, 0);
  std::string root(len, '\0');
  if (comm_.rank() == 0) root = mine;
  comm_.broadcast(root.data(), len, 0);
  if (root != mine) {
    std::istringstream a(root), b(mine);
    std::string la, lb;
    int i = 0;
    while (true) {
      const bool ga = bool(std::getline(a, la)), gb = bool(std::getline(b, lb));
      if (!ga || !gb || la != lb)
        DPT_FAIL("this rank's model differs from rank 0's at layer " << i << ": rank 0 has '"
                 << (ga ? la : "<no layer>") << "', this rank has '" << (gb ? lb : "<no layer>")
                 << "'. Every rank must run the same config");
      ++i;
    }
  }
  comm_.broadcast(model_->weights().data(), size_t(model_->weights().size()) * sizeof(float), 0);
  if (model_->state().size() > 0)
    comm_.broadcast(model_->state().data(), size_t(model_->state().size()) * sizeof(float), 0);
}

void Trainer::sync_batch_norm() {
  if (comm_.size() == 1 || model_->state().size() == 0) return;
  Tensor& s = model_->state();
  comm_.allreduce_sum(s.data(), size_t(s.size()))->wait();
  const float inv = 1.0f / float(comm_.size());
  for (int64_t i = 0; i < s.size(); ++i) s.data()[i] *= inv;
}

TrainSummary Trainer::run() {
  const TrainConfig& tc = cfg_.train;
  const int rank = comm_.rank(), world = comm_.size();
  if (rank == 0) {
    make_directories(cfg_.run_dir);
    std::ofstream(cfg_.run_dir + "/config.yaml") << cfg_.resolved;
  }
  log::init(rank, rank == 0 ? cfg_.run_dir + "/log.txt" : "");
  sync_start();

  DataPlan plan(cfg_.data, tc.batch_size, rank, world);
  const ShardData& data = plan.train_data();
  const Shape data_shape{data.height, data.width, data.channels};
  DPT_CHECK(model_->input_shape() == data_shape,
            "config model.input is " << shape_str(model_->input_shape()) << " but the "
            << cfg_.data.dataset << " shards hold images of " << shape_str(data_shape));
  DPT_CHECK(model_->num_classes() == data.classes,
            "the model's last layer has " << model_->num_classes() << " units but "
            << cfg_.data.dataset << " has " << data.classes << " classes");

  std::unique_ptr<MetricsCsv> csv;
  if (rank == 0) csv = std::make_unique<MetricsCsv>(cfg_.run_dir + "/metrics.csv");
  log::info("dptrain: " + cfg_.name + " on " + std::to_string(world) + " rank(s) (" +
            comm_.backend() + "), " + std::to_string(plan.global_train_samples()) + " train / " +
            std::to_string(plan.global_val_samples()) + " validation samples, global batch " +
            std::to_string(tc.batch_size) + ", " + std::to_string(plan.steps_per_epoch()) +
            " steps per epoch");

  auto optimizer = make_optimizer(tc.optimizer, model_->num_trainable());
  GradientReducer reducer(comm_, *model_, int64_t(tc.bucket_mb * (1 << 20)),
                          int64_t(tc.first_bucket_mb * (1 << 20)), tc.overlap);
  Prefetcher prefetch(data, plan.local_batch(), int(cfg_.data.prefetch));
  const AugmentSpec aug{cfg_.data.random_crop_pad, cfg_.data.horizontal_flip};
  const int64_t steps = plan.steps_per_epoch();
  const int64_t my_steps =
      (int64_t(plan.train_indices().size()) + plan.local_batch() - 1) / plan.local_batch();

  TrainSummary summary;
  double best = std::nan("");
  int64_t since_best = 0;
  double total_epoch_time = 0;
  const auto run_start = Clock::now();
  for (int64_t epoch = 0; epoch < tc.epochs; ++epoch) {
    std::vector<int64_t> order = epoch_order(int64_t(plan.train_indices().size()),
                                             cfg_.data.shuffle, tc.seed, uint32_t(rank),
                                             uint64_t(epoch));
    for (auto& i : order) i = plan.train_indices()[size_t(i)];
    prefetch.start(std::move(order), plan.local_batch(), 0, my_steps, aug, tc.seed,
                   uint32_t(rank), uint64_t(epoch));
    log::info("Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(tc.epochs));

    const auto epoch_start = Clock::now();
    auto interval_start = epoch_start;
    double epoch_sums[3] = {0, 0, 0};     // loss, correct, count (global, summed at intervals)
    double interval[3] = {0, 0, 0};       // this rank's, since the last interval
    double allreduce_sec = 0, interval_allreduce = 0;
    double lr = 0;
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t global_step = epoch * steps + step;
      lr = learning_rate(tc.schedule, tc.optimizer.lr, global_step, steps, tc.epochs);
      const Batch* batch = nullptr;
      if (plan.count_at(rank, step) > 0) {
        batch = &prefetch.next();
        DPT_ASSERT(batch->n == plan.count_at(rank, step));
      }
      const StepContext ctx{Mode::kTrain, tc.seed, uint32_t(rank), uint64_t(global_step)};
      const StepResult res = train_step(*model_, reducer, *optimizer, batch,
                                        plan.global_count_at(step), ctx, float(lr));
      interval[0] += res.stats.loss_sum;
      interval[1] += double(res.stats.correct);
      interval[2] += double(res.stats.count);
      interval_allreduce += res.allreduce_sec;

      const bool last = step + 1 == steps;
      if ((step + 1) % tc.log_every_steps == 0 || last) {
        comm_.allreduce_sum_f64(interval, 3);
        for (int k = 0; k < 3; ++k) epoch_sums[k] += interval[k];
        allreduce_sec += interval_allreduce;
        if (csv && interval[2] > 0) {
          MetricsRow row;
          row.epoch = std::to_string(epoch + 1);
          row.step = global_step + 1;
          row.loss = interval[0] / interval[2];
          row.accuracy = interval[1] / interval[2];
          row.lr = lr;
          row.images_per_sec = interval[2] / std::max(since(interval_start), 1e-9);
          row.allreduce_sec = interval_allreduce;
          row.elapsed_sec = since(run_start);
          csv->write(row);
        }
        interval[0] = interval[1] = interval[2] = 0;
        interval_allreduce = 0;
        interval_start = Clock::now();
        log::progress(std::to_string(step + 1) + "/" + std::to_string(steps) + " " +
                      bar(step + 1, steps) + " - accuracy: " +
                      fmt("%.4f", epoch_sums[1] / std::max(epoch_sums[2], 1.0)) +
                      " - loss: " + fmt("%.4f", epoch_sums[0] / std::max(epoch_sums[2], 1.0)));
      }
    }
    const double epoch_time = since(epoch_start);
    total_epoch_time += epoch_time;
    sync_batch_norm();
    const double train_loss = epoch_sums[0] / epoch_sums[2];
    const double train_acc = epoch_sums[1] / epoch_sums[2];
    const double ips = epoch_sums[2] / epoch_time;
    summary.images_per_sec += ips;
    std::string line = std::to_string(steps) + "/" + std::to_string(steps) + " - " +
                       fmt("%.0f", epoch_time) + "s - " +
                       fmt("%.0f", 1000.0 * epoch_time / double(steps)) + "ms/step - accuracy: " +
                       fmt("%.4f", train_acc) + " - loss: " + fmt("%.4f", train_loss);
    MetricsRow row;
    row.epoch = std::to_string(epoch + 1);
    row.step = (epoch + 1) * steps;
    row.loss = train_loss;
    row.accuracy = train_acc;
    row.lr = lr;
    row.images_per_sec = ips;
    row.allreduce_sec = allreduce_sec;
    if (plan.global_val_samples() > 0) {
      const EvalResult val = evaluate(*model_, data, plan.val_indices(), plan.local_batch(), comm_);
      row.val_loss = val.loss;
      row.val_accuracy = val.accuracy;
      line += " - val_accuracy: " + fmt("%.4f", val.accuracy) + " - val_loss: " +
              fmt("%.4f", val.loss);
    }
    row.elapsed_sec = since(run_start);
    line += " - " + fmt("%.0f", ips) + " img/s";
    log::info(line);
    if (csv) csv->write(row);
    summary.epochs_run = epoch + 1;
    summary.samples_last_epoch = int64_t(epoch_sums[2]);

    const EarlyStopping& es = tc.early_stopping;
    if (!es.monitor.empty()) {
      const double v = es.monitor == "accuracy" ? row.accuracy
                       : es.monitor == "loss" ? row.loss
                       : es.monitor == "val_accuracy" ? row.val_accuracy : row.val_loss;
      DPT_CHECK(v >= 0, "train.early_stopping.monitor is " << es.monitor
                                                           << " but there is no validation split");
      const bool higher = es.monitor.find("accuracy") != std::string::npos;
      if (es.target != 0 && (higher ? v >= es.target : v <= es.target)) {
        log::info("Early stopping: " + es.monitor + " reached " + fmt("%.4f", v));
        break;
      }
      if (es.patience > 0) {
        if (std::isnan(best) || improved(es.monitor, v, best, es.min_delta)) {
          best = v;
          since_best = 0;
        } else if (++since_best >= es.patience) {
          log::info("Early stopping: " + es.monitor + " did not improve for " +
                    std::to_string(es.patience) + " epochs");
          break;
        }
      }
    }
  }
  prefetch.stop();
  summary.images_per_sec /= double(std::max<int64_t>(summary.epochs_run, 1));
  summary.seconds_per_epoch = total_epoch_time / double(std::max<int64_t>(summary.epochs_run, 1));

  std::vector<int64_t> test_idx;
  const ShardData test = load_test_slice(cfg_.data, rank, world, &test_idx);
  summary.test = evaluate(*model_, test, test_idx, plan.local_batch(), comm_);
  log::info("Test: " + std::to_string(summary.test.count) + " samples - accuracy: " +
            fmt("%.4f", summary.test.accuracy) + " - loss: " + fmt("%.4f", summary.test.loss));
  log::info("Throughput: " + fmt("%.0f", summary.images_per_sec) + " train images/s (mean over " +
            std::to_string(summary.epochs_run) + " epochs), " +
            fmt("%.1f", summary.seconds_per_epoch) + " s/epoch");
  if (rank == 0) {
    std::ofstream s(cfg_.run_dir + "/summary.yaml");
    s << "name: " << cfg_.name << "\nworld_size: " << world << "\nepochs_run: "
      << summary.epochs_run << "\ntest_samples: " << summary.test.count
      << "\ntest_accuracy: " << summary.test.accuracy << "\ntest_loss: " << summary.test.loss
      << "\nimages_per_sec: " << summary.images_per_sec
      << "\nseconds_per_epoch: " << summary.seconds_per_epoch << "\n";
  }
  return summary;
}

}  // namespace dpt
