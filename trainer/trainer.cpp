// The training loop: set-up (run directory, resume, data), epochs of data-parallel steps with
// interval metrics, validation, checkpoints and stop signals, and the finish (final checkpoint, test).
#include "trainer/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>

#include "comm/agree.h"
#include "comm/backend.h"
#include "comm/gradient_reducer.h"
#include "data/batch_source.h"
#include "core/exit_codes.h"
#include "core/files.h"
#include "models/kernels/precision_support.h"
#include "models/whitening.h"
#include "trainer/data_plan.h"
#include "trainer/log.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizers.h"
#include "trainer/signals.h"
#include "trainer/tensorboard.h"
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

// "7s", "2:05", "1:02:05" as Keras prints an ETA.
std::string eta(double seconds) {
  const int64_t t = int64_t(seconds + 0.5);
  char buf[32];
  if (t < 60) std::snprintf(buf, sizeof buf, "%llds", (long long)t);
  else if (t < 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(t / 60), (long long)(t % 60));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60), (long long)(t % 60));
  return buf;
}

std::string new_run_id() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08x%08x", unsigned(rd()), unsigned(rd()) ^ unsigned(::getpid()));
  return buf;
}

bool is_inside(const std::string& path, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string p = fs::weakly_canonical(path, ec).string();
  const std::string d = fs::weakly_canonical(dir, ec).string();
  return p == d || p.rfind(d + "/", 0) == 0;
}

// Note [interval sums]: what every rank adds up between two logging points, all-reduced once
// per interval: loss sum, correct, count, skipped steps (rank 0 alone counts them: every rank
// skips the same steps), then per rank its busy seconds and samples (for the slow-rank check).
enum : size_t { kLoss = 0, kCorrect, kCount, kSkipped, kPerRank };

// train.nonfinite: skip gives up after this many non-finite steps in a row.
constexpr int64_t kMaxSkippedInARow = 20;

// The one place a metrics.csv row (and the numbers of the console lines) is made.
MetricsRow metrics_row(const std::string& epoch, int64_t step, const LossStats& sums, double lr,
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

struct Trainer::Run {
  std::unique_ptr<DataPlan> plan;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<BatchSource> batches;
  std::unique_ptr<EvalBatches> val_batches, test_batches;  // made once (Note [device batch order])
  std::unique_ptr<MetricsCsv> csv;
  std::unique_ptr<TensorBoardWriter> tensorboard;  // rank 0, unless train.tensorboard: false
  std::unique_ptr<RunLock> run_lock, ckpt_lock;  // rank 0, for the whole run
  std::vector<std::string> notes, warnings;      // said once the log is open
  std::vector<std::string> earlier_files;        // another run's files in run_dir (fresh run)
  bool resumed = false;
  TrainPosition pos;
  TrainSummary summary;
  ShardData test_data;  // validated at start: a bad test file must not wait for the end
  std::vector<int64_t> test_idx;
  Clock::time_point start = Clock::now();
  double epoch_time_total = 0;
  double epoch_allreduce = 0;
  int64_t epoch_skipped = 0;
  int64_t skipped_in_a_row = 0;
  int64_t last_checkpoint_step = -1;
  bool stop_early = false;
  std::vector<double> interval;  // Note [interval sums]
  double interval_allreduce = 0, lr = 0;
  Clock::time_point interval_start, epoch_start;
  int64_t epoch_first_step = 0;
  std::vector<int> slow_streak;  // per rank: intervals in a row at > 2x the others' median
  bool divergence_warned = false;
  Tensor state_snapshot;  // BatchNorm statistics before the step (train.nonfinite: skip)
  Device device = Device::kCpu;        // where the model lives (train.backend)
  PrecisionChoice precision;           // train.precision as resolved for that device
  std::unique_ptr<Communicator> nccl;  // device gradients on several GPUs
  Communicator* grad_comm = nullptr;   // all-reduces gradients and BatchNorm statistics
};

Trainer::Trainer(Config cfg, Communicator& comm, TrainOptions options)
    : cfg_(std::move(cfg)), comm_(comm), options_(std::move(options)) {
  model_ = std::make_unique<Model>(cfg_.model, cfg_.name);
  model_->initialize(cfg_.train.seed);
}

Trainer::~Trainer() {
  comm_.set_location(nullptr);  // it pointed into this run's state
}

void Trainer::check_same_model() {
  if (comm_.size() == 1) return;
  // Before anything else: broadcasting weights of different sizes would corrupt memory or hang.
  const std::string mine = model_->signature_text();
  uint64_t len = mine.size();
  comm_.broadcast(&len, sizeof len, 0);
  std::string root(len, '\0');
  if (comm_.rank() == 0) root = mine;
  comm_.broadcast(root.data(), len, 0);
  agree(comm_, [&] {
    const SignatureDifference d = first_difference(root, mine);
    DPT_CHECK(!d.differ, "this rank's model differs from rank 0's at layer " << d.layer
              << ": rank 0 has '" << d.a << "', this rank has '" << d.b
              << "'. Every rank must run the same config");
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
  // Only the moving statistics differ between ranks; frozen weights (trainable: false) are
  // kept as they are, since an average of equal values need not round back to the value.
  model_->download();
  std::vector<float> frozen;
  auto frozen_params = [&](auto&& visit) {
    for (const Param& p : model_->params())
      if (!p.grad && p.spec.name.rfind("moving_", 0) != 0) visit(p);
  };
  frozen_params([&](const Param& p) { frozen.insert(frozen.end(), p.host_value, p.host_value + p.size()); });
  Tensor& s = model_->state();
  Communicator& c = run_ && run_->grad_comm ? *run_->grad_comm : comm_;
  c.allreduce_sum(s.data(), size_t(s.size()))->wait();
  model_->download();
  Tensor& h = model_->host_state();
  const float inv = 1.0f / float(comm_.size());
  for (int64_t i = 0; i < h.size(); ++i) h.data()[i] *= inv;
  size_t at = 0;
  frozen_params([&](const Param& p) {
    std::copy(frozen.begin() + long(at), frozen.begin() + long(at + size_t(p.size())), p.host_value);
    at += size_t(p.size());
  });
  model_->upload();
}

bool Trainer::stop_requested(Run&) {
  double flag = stop_signal() ? 1.0 : 0.0;
  comm_.allreduce_sum_f64(&flag, 1);  // every rank stops at the same step
  return flag > 0;
}

// Rank 0 takes the run directory (lock, leftovers, refusal to mix with another run) and picks
// the checkpoint to resume from; every rank learns the outcome.
void Trainer::claim_run_directory(Run& r, std::string* resume_path) {
  const std::string& run_dir = cfg_.run_dir;
  const std::string& ckpt = cfg_.checkpoint.dir;
  agree(comm_, [&] {
    if (comm_.rank() != 0) return;
    make_directories(run_dir);
    r.run_lock = std::make_unique<RunLock>(run_dir);
    if (!is_inside(ckpt, run_dir)) {
      make_directories(ckpt);
      r.ckpt_lock = std::make_unique<RunLock>(ckpt);
    }
    for (const std::string& dir : {run_dir, ckpt})
      for (const auto& f : remove_stale_temporaries(dir))
        r.notes.push_back("Removed '" + f + "', a temporary file of a writer that died");
    if (options_.resume.empty()) {
      r.earlier_files = earlier_run_files(run_dir, ckpt);
      const size_t n = r.earlier_files.size();
      DPT_CHECK(n == 0 || options_.overwrite,
                "run_dir '" << run_dir << "' already holds files of an earlier run ('"
                << (n ? r.earlier_files.front() : "") << "'"
                << (n > 1 ? " and " + std::to_string(n - 1) + " more" : "")
                << "); continue that run with --resume auto, give this one another run_dir, "
                   "or pass --overwrite to move the old files aside");
    } else if (options_.resume == "auto") {
      std::vector<std::pair<std::string, std::string>> skipped;
      *resume_path = newest_checkpoint(ckpt, &skipped);
      for (const auto& [p, why] : skipped) r.notes.push_back("Resume: skipping '" + p + "': " + why);
      if (resume_path->empty())
        r.notes.push_back("Resume: no usable checkpoint in " + ckpt + "; starting fresh");
    } else {
      *resume_path = options_.resume;
    }
  });
  uint64_t len = resume_path->size();
  comm_.broadcast(&len, sizeof len, 0);
  resume_path->resize(len);
  if (len > 0) comm_.broadcast(resume_path->data(), len, 0);
}

// Every rank: the optimizer, the resumed state, its shards and its test slice. Any failure here
// is agreed on (Note [agreeing on errors]) before a single file of the run is written.
void Trainer::load_state_and_data(Run& r, const std::string& path) {
  const TrainConfig& tc = cfg_.train;
  const int rank = comm_.rank(), world = comm_.size();
  agree(comm_, [&] {
    r.device = select_device(tc.backend, comm_);  // before any GPU allocation
    r.precision = resolve_precision(tc.precision, r.device == Device::kCuda);
    if (r.device == Device::kCpu) r.notes.push_back("CPU kernels: " + cpu_kernel_choices());
    if (!r.precision.reason.empty())
      r.notes.push_back(std::string("Precision: auto chose ") + precision_name(r.precision.precision) +
                        ": " + r.precision.reason);
    r.optimizer = make_optimizer(tc.optimizer, model_->num_trainable(), r.device);
    r.optimizer->set_ranges(optimizer_ranges(*model_, tc.optimizer));
    if (tc.lookahead.on) r.optimizer->enable_lookahead();
    r.pos.seed = tc.seed;
    r.pos.run_id = new_run_id();
    if (!path.empty()) {
      std::string warning;
      r.pos = read_checkpoint(path, *model_, r.optimizer.get(), &warning);
      if (!warning.empty()) r.warnings.push_back(warning);
      r.resumed = true;
      DPT_CHECK(r.pos.seed == tc.seed,
                "checkpoint '" << path << "' was trained with train.seed " << r.pos.seed
                               << " but the config says " << tc.seed << "; use the same seed");
      if (r.pos.finished && (r.pos.early_stopped || r.pos.epoch >= tc.epochs)) {
        r.summary.already_complete = true;
        r.summary.last_checkpoint = path;
        return;
      }
      r.notes.push_back("Resume: from " + path + " at epoch " + std::to_string(r.pos.epoch + 1) +
                        ", step " + std::to_string(r.pos.global_step));
      if (r.pos.world_size != world) {
        r.notes.push_back("Resume: the checkpoint was written by " + std::to_string(r.pos.world_size) +
                          " rank(s), this run has " + std::to_string(world) +
                          ": the data order differs from an uninterrupted run");
        if (r.pos.step_in_epoch > 0) {
          r.notes.push_back("Resume: restarting epoch " + std::to_string(r.pos.epoch + 1) +
                            " from its first step (its position is per world size)");
          r.pos.global_step -= r.pos.step_in_epoch;
          r.pos.step_in_epoch = 0;
        }
      }
      r.last_checkpoint_step = r.pos.global_step;
      r.pos.finished = 0;
      // The master weights are FP32 in any precision: a run may change it when it resumes.
      if (r.pos.precision != precision_name(r.precision.precision))
        r.notes.push_back("Resume: the checkpoint was trained in " + r.pos.precision +
                          ", this run continues in " + precision_name(r.precision.precision));
    }
    r.plan = std::make_unique<DataPlan>(cfg_.data, tc.batch_size, rank, world);
    const ShardData& data = r.plan->train_data();
    const Shape data_shape{data.height, data.width, data.channels};
    DPT_CHECK(model_->input_shape() == data_shape,
              "config model.input is " << shape_str(model_->input_shape()) << " but the "
              << cfg_.data.dataset << " shards hold images of " << shape_str(data_shape));
    DPT_CHECK(model_->num_classes() == data.classes,
              "the model's last layer has " << model_->num_classes() << " units but "
              << cfg_.data.dataset << " has " << data.classes << " classes");
    r.test_data = load_test_slice(cfg_.data, rank, world, &r.test_idx);
    DPT_CHECK(r.test_data.height == data.height && r.test_data.width == data.width &&
                  r.test_data.channels == data.channels && r.test_data.classes == data.classes,
              "the test file in '" << cfg_.data.dir << "' holds " << r.test_data.height << "x"
              << r.test_data.width << "x" << r.test_data.channels << " images of "
              << r.test_data.classes << " classes, unlike the train shards; re-run dptrain prepare");
    const size_t old = r.plan->unchecked_files().size() + r.test_data.unchecked_files.size();
    if (old > 0)
      r.warnings.push_back(std::to_string(old) + " data file(s) in " + cfg_.data.dir +
                           " were written before checksums (shard format 1): corruption in "
                           "them cannot be detected; re-run dptrain prepare to add them");
  });
}

void Trainer::open_run_files(Run& r) {
  const int rank = comm_.rank();
  agree(comm_, [&] {
    if (rank != 0) return;
    if (!r.earlier_files.empty())
      r.notes.push_back("Moved the earlier run's files to " +
                        move_aside(cfg_.run_dir, r.earlier_files) + " (--overwrite)");
    write_config_file(cfg_.run_dir, cfg_.resolved);
    // A resumed run drops the rows its predecessor logged after the checkpoint.
    const int64_t keep = r.resumed ? r.pos.global_step : options_.resume.empty() ? -1 : 0;
    r.csv = std::make_unique<MetricsCsv>(cfg_.run_dir + "/metrics.csv", keep);
    if (cfg_.train.tensorboard)  // per-epoch tags count epochs: keep those the checkpoint holds
      r.tensorboard = std::make_unique<TensorBoardWriter>(
          cfg_.run_dir + "/tensorboard", keep, r.resumed ? r.pos.epoch : keep, cfg_.resolved);
    log::init(0, cfg_.run_dir + "/log.txt");
  });
  if (rank != 0) log::init(rank, "");
  for (const auto& n : r.notes) log::info(n);
  for (const auto& w : r.warnings) log::warn(w);
}

void Trainer::start_communication(Run& r) {
  const TrainConfig& tc = cfg_.train;
  const int world = comm_.size();
  if (!r.resumed) {  // Note [whitening]: from this rank's images; rank 0's are broadcast
    const ShardData& d = r.plan->train_data();
    const std::string said = whiten_from_images(*model_, d.images.data(), d.n, d.height, d.width, d.channels);
    if (!said.empty()) log::info(said + (comm_.size() > 1 ? ", rank 0's shard" : ""));
  }
  broadcast_weights();  // rank 0's initial (or resumed) values on every rank
  if (r.device != Device::kCpu) model_->to_device(r.device);
  model_->set_precision(r.precision.precision);
  r.pos.precision = precision_name(r.precision.precision);
  r.summary.precision = r.precision;
  r.nccl = make_gradient_communicator(r.device, comm_);
  r.grad_comm = r.nccl ? r.nccl.get() : &comm_;
  if (r.device != Device::kCpu) log::info(describe_device(r.device, *r.grad_comm));
  std::string split = std::to_string(r.plan->batch_of(0));
  if (tc.batch_size % world != 0) split += "/" + std::to_string(r.plan->batch_of(world - 1));
  log::info("dptrain: " + cfg_.name + " on " + std::to_string(world) + " rank(s) (" +
            comm_.backend() + "), " + std::to_string(r.plan->global_train_samples()) +
            " train / " + std::to_string(r.plan->global_val_samples()) +
            " validation samples, global batch " + std::to_string(tc.batch_size) + " (" + split +
            " per rank), " + std::to_string(r.plan->steps_per_epoch()) + " steps per epoch, precision " +
            precision_name(r.precision.precision) + (r.precision.reason.empty() ? "" : " (auto)"));
  r.reducer = std::make_unique<GradientReducer>(*r.grad_comm, *model_, int64_t(tc.bucket_mb * (1 << 20)),
                                                int64_t(tc.first_bucket_mb * (1 << 20)), tc.overlap);
  r.batches = std::make_unique<BatchSource>(r.plan->train_data(), r.plan->local_batch(),
                                            int(cfg_.data.prefetch), r.device);
  r.val_batches = std::make_unique<EvalBatches>(r.plan->train_data(), r.plan->local_batch(),
                                                r.device, cfg_.eval.tta);
  r.test_batches = std::make_unique<EvalBatches>(r.test_data, r.plan->local_batch(), r.device,
                                                 cfg_.eval.tta);
  if (tc.nonfinite == "skip" && model_->state().size() > 0)
    r.state_snapshot = Tensor(model_->state().shape(), model_->state().device());
  install_stop_signals();
}

bool Trainer::setup(Run& r) {
  const int world = comm_.size();
  comm_.set_collective_timeout(cfg_.train.collective_timeout_s);
  comm_.set_location([&r, this] {
    const int64_t steps = r.plan ? r.plan->steps_per_epoch() : 0;
    return "epoch " + std::to_string(r.pos.epoch + 1) + "/" + std::to_string(cfg_.train.epochs) +
           ", step " + std::to_string(r.pos.step_in_epoch) + "/" + std::to_string(steps);
  });
  r.interval.assign(kPerRank + 2 * size_t(world), 0.0);
  r.slow_streak.assign(size_t(world), 0);
  check_same_model();
  std::string resume_path;
  claim_run_directory(r, &resume_path);
  load_state_and_data(r, resume_path);
  if (r.summary.already_complete) {
    log::init(comm_.rank(), "");
    for (const auto& n : r.notes) log::info(n);
    log::info("Resume: the run is already complete (" + resume_path + ", epoch " +
              std::to_string(r.pos.epoch) + " of " + std::to_string(cfg_.train.epochs) +
              "); nothing to do. Raise train.epochs to train further.");
    return false;
  }
  open_run_files(r);
  start_communication(r);
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

void Trainer::flush_interval(Run& r, int64_t epoch, int64_t s) {
  const int world = comm_.size();
  const int64_t steps = r.plan->steps_per_epoch();
  double* v = r.interval.data();
  comm_.allreduce_sum_f64(v, r.interval.size());
  const LossStats interval{v[kLoss], int64_t(v[kCorrect]), int64_t(v[kCount])};
  r.pos.epoch_stats.add(interval);
  r.epoch_skipped += int64_t(v[kSkipped]);
  if (r.csv && (v[kCount] > 0 || v[kSkipped] > 0)) {
    const MetricsRow row = metrics_row(std::to_string(epoch + 1), r.pos.global_step, interval, r.lr,
                                       since(r.interval_start), r.interval_allreduce, since(r.start),
                                       int64_t(v[kSkipped]));
    r.csv->write(row);
    if (r.tensorboard) r.tensorboard->write_interval(row);
  }
  // Slow ranks (Horovod's stall inspector, per sample so that uneven shards do not count):
  // a rank whose busy time per sample is over twice the median of the others' for three
  // intervals in a row holds every rank back; say so once per episode.
  if (comm_.rank() == 0 && world > 1) {
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
      int& streak = r.slow_streak[size_t(q)];
      streak = per_sample[size_t(q)] > 2 * median ? streak + 1 : 0;
      if (streak == 3)
        log::warn("rank " + std::to_string(q) + " is slow: for 3 logging intervals its steps "
                  "took " + fmt("%.1f", per_sample[size_t(q)] / median) + "x the time per sample "
                  "of the other ranks' median, and every rank waits for it. Check its node "
                  "(load, CPU throttling, a noisy neighbour, a slow disk).");
    }
  }
  const double interval_loss = v[kCount] > 0 ? v[kLoss] / v[kCount] : 0;
  const double chance = std::log(double(model_->num_classes()));
  if (!r.divergence_warned && interval_loss > 1000 * chance) {
    r.divergence_warned = true;
    log::warn("the training loss is " + fmt("%.3g", interval_loss) + ", far above chance level (" +
              fmt("%.2f", chance) + "): training is diverging; lower train.optimizer.lr (now " +
              fmt("%g", r.lr) + ")");
  }
  std::fill(r.interval.begin(), r.interval.end(), 0.0);
  r.interval_allreduce = 0;
  r.interval_start = Clock::now();
  // Keras' bar: the epoch's remaining time from its pace so far.
  const MetricsRow epoch_row = metrics_row("", 0, r.pos.epoch_stats, 0, 1, 0, 0, 0);
  const double pace = since(r.epoch_start) / double(std::max<int64_t>(s + 1 - r.epoch_first_step, 1));
  log::progress(std::to_string(s + 1) + "/" + std::to_string(steps) + " " + bar(s + 1, steps) +
                " - ETA: " + eta(pace * double(steps - s - 1)) +
                " - accuracy: " + fmt("%.4f", epoch_row.accuracy) +
                " - loss: " + fmt("%.4f", epoch_row.loss));
}

bool Trainer::step(Run& r, int64_t epoch, int64_t s) {
  const TrainConfig& tc = cfg_.train;
  const DataPlan& plan = *r.plan;
  const int rank = comm_.rank(), world = comm_.size();
  const int64_t steps = plan.steps_per_epoch();
  const int64_t global_step = epoch * steps + s;
  const auto t0 = Clock::now();
  r.lr = learning_rate(tc.schedule, tc.optimizer.lr, global_step, steps, tc.epochs);
  const Batch* batch = nullptr;
  if (plan.count_at(rank, s) > 0) {
    batch = &r.batches->next();
    DPT_ASSERT(batch->n == plan.count_at(rank, s));
  }
  Tensor& state = model_->state();
  const bool skip_mode = tc.nonfinite == "skip";
  if (!r.state_snapshot.empty())
    copy_memory(r.state_snapshot.data(), state.on_device(), state.data(), state.on_device(),
                size_t(state.size()) * sizeof(float));
  const StepContext ctx{Mode::kTrain, tc.seed, uint32_t(rank), uint64_t(global_step)};
  const StepResult res = train_step(*model_, *r.reducer, *r.optimizer, batch,
                                    plan.global_count_at(s), ctx, float(r.lr),
                                    float(tc.label_smoothing));
  r.pos.epoch = epoch;
  r.pos.step_in_epoch = s + 1;
  r.pos.global_step = global_step + 1;
  if (!res.finite) {
    // Every rank has the same verdict here (Note [non-finite verdict]): no rank is left behind.
    const std::string first = first_non_finite_gradient(*model_);
    const std::string what = "non-finite loss or gradient (NaN or infinity) at epoch " +
                             std::to_string(epoch + 1) + ", step " + std::to_string(s + 1) +
                             " (global step " + std::to_string(global_step + 1) + ")" +
                             (first.empty() ? "" : ", first in " + first);
    if (!skip_mode)
      agree(comm_, [&] {
        DPT_FAIL_CODE(kExitNonFinite, what << "; the weights were not updated and the checkpoints "
                      "are untouched. Lower train.optimizer.lr (now " << r.lr << "), check the "
                      "data, or set train.nonfinite: skip to skip such steps");
      });
    // Skip: the weights were not updated; undo the BatchNorm statistics of the bad batch.
    if (!r.state_snapshot.empty())
      copy_memory(state.data(), state.on_device(), r.state_snapshot.data(), state.on_device(),
                  size_t(state.size()) * sizeof(float));
    ++r.pos.skipped_steps;
    // A run whose every step overflows cannot recover by skipping: end it like abort does.
    if (++r.skipped_in_a_row > kMaxSkippedInARow)
      agree(comm_, [&] {
        DPT_FAIL_CODE(kExitNonFinite, what << ", and the " << kMaxSkippedInARow << " steps before "
                      "it were skipped too (train.nonfinite: skip): the run does not recover. "
                      "Lower train.optimizer.lr (now " << r.lr << ") and resume from an earlier "
                      "checkpoint");
      });
    if (rank == 0) r.interval[kSkipped] += 1;
    if (r.pos.skipped_steps <= 10)
      log::warn("skipped step: " + what + (r.pos.skipped_steps == 10
                                               ? " (further skips are counted in metrics.csv)" : ""));
  } else {
    r.skipped_in_a_row = 0;
    r.interval[kLoss] += res.stats.loss_sum;
    r.interval[kCorrect] += double(res.stats.correct);
    r.interval[kCount] += double(res.stats.count);
  }
  r.interval_allreduce += res.allreduce_sec;
  r.epoch_allreduce += res.allreduce_sec;
  const double rho = lookahead_rho(tc.lookahead, global_step + 1, steps, tc.epochs);
  if (rho >= 0) r.optimizer->lookahead_sync(model_->weights().data(), float(rho));

  const bool last = s + 1 == steps;
  const bool ckpt_due = cfg_.checkpoint.every_steps > 0 &&
                        r.pos.global_step % cfg_.checkpoint.every_steps == 0 && !last;
  const auto wait_start = Clock::now();
  const bool stop = stop_requested(r);
  const double waited = res.allreduce_sec + since(wait_start);
  r.interval[kPerRank + size_t(rank)] += std::max(0.0, since(t0) - waited);
  r.interval[kPerRank + size_t(world + rank)] += double(res.stats.count);
  if ((s + 1) % tc.log_every_steps == 0 || last || ckpt_due || stop) flush_interval(r, epoch, s);
  if (stop) {
    log::info("Stop signal " + std::to_string(stop_signal()) + " received: checkpointing at step " +
              std::to_string(r.pos.global_step));
    r.batches->stop();
    save_checkpoint(r);
    return false;
  }
  if (ckpt_due) save_checkpoint(r);
  return true;
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
  r.batches->start(std::move(order), plan.local_batch(), std::min(first_step, my_steps),
                    my_steps, AugmentSpec{cfg_.data.random_crop_pad, cfg_.data.horizontal_flip, false, 0, 0, cfg_.data.reflect_fill},
                    tc.seed, uint32_t(rank), uint64_t(epoch));
  log::info("Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(tc.epochs));
  if (first_step == 0) r.pos.epoch_stats = LossStats{};
  r.epoch_allreduce = 0;
  r.epoch_skipped = 0;
  const auto epoch_start = Clock::now();
  r.interval_start = r.epoch_start = epoch_start;
  r.epoch_first_step = first_step;
  for (int64_t s = first_step; s < steps; ++s)
    if (!step(r, epoch, s)) return false;
  r.pos.epoch = epoch + 1;
  r.pos.step_in_epoch = 0;
  end_of_epoch(r, epoch, since(epoch_start));
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
  const DataPlan& plan = *r.plan;
  const int64_t steps = plan.steps_per_epoch();
  // Note [lookahead]: the epoch ends on the slow weights (evaluated and checkpointed).
  if (lookahead_started(cfg_.train.lookahead, r.pos.global_step, steps))
    r.optimizer->lookahead_sync(model_->weights().data(), 1.0f);
  sync_batch_norm();
  const double lr = learning_rate(cfg_.train.schedule, cfg_.train.optimizer.lr,
                                  r.pos.global_step - 1, steps, cfg_.train.epochs);
  MetricsRow row = metrics_row(std::to_string(epoch + 1), r.pos.global_step, r.pos.epoch_stats, lr,
                               seconds, r.epoch_allreduce, 0, r.epoch_skipped);
  std::string line = std::to_string(steps) + "/" + std::to_string(steps) + " - " +
                     fmt("%.0f", seconds) + "s - " +
                     fmt("%.0f", 1000.0 * seconds / double(steps)) + "ms/step - accuracy: " +
                     fmt("%.4f", row.accuracy) + " - loss: " + fmt("%.4f", row.loss);
  if (plan.global_val_samples() > 0) {
    const EvalResult val = evaluate(*model_, plan.train_data(), plan.val_indices(),
                                    plan.local_batch(), comm_, nullptr, nullptr,
                                    cfg_.eval.tta, r.val_batches.get());
    row.val_loss = val.loss;
    row.val_accuracy = val.accuracy;
    line += " - val_accuracy: " + fmt("%.4f", val.accuracy) + " - val_loss: " + fmt("%.4f", val.loss);
  }
  row.elapsed_sec = since(r.start);
  line += " - " + fmt("%.0f", row.images_per_sec) + " img/s";
  if (r.epoch_skipped > 0) line += " - " + std::to_string(r.epoch_skipped) + " steps skipped";
  log::info(line);
  if (cfg_.eval.test_every_epoch) {  // bench/time_to_accuracy.sh reads this line
    const EvalResult t = evaluate(*model_, r.test_data, r.test_idx, plan.local_batch(), comm_,
                                  nullptr, nullptr, cfg_.eval.tta, r.test_batches.get());
    log::info("Epoch test: epoch " + std::to_string(epoch + 1) + " - accuracy: " +
              fmt("%.4f", t.accuracy) + " - loss: " + fmt("%.4f", t.loss) + " - training time " +
              fmt("%.1f", r.epoch_time_total + seconds) + " s - since start " +
              fmt("%.1f", since(r.start)) + " s");
  }
  if (r.csv) r.csv->write(row);
  if (r.tensorboard) r.tensorboard->write_epoch(row);
  r.summary.epochs_run += 1;
  r.summary.images_per_sec += row.images_per_sec;
  r.epoch_time_total += seconds;
  r.summary.samples_last_epoch = r.pos.epoch_stats.count;

  const std::string& m = cfg_.train.early_stopping.monitor;
  const double v = m == "accuracy" ? row.accuracy : m == "loss" ? row.loss
                   : m == "val_accuracy" ? row.val_accuracy : row.val_loss;
  r.stop_early = should_stop_early(r, v);
  const int64_t every = cfg_.checkpoint.every_epochs;
  const bool last = epoch + 1 >= cfg_.train.epochs || r.stop_early;
  if (last) {  // the checkpoint written now is the final one: mark it (Resume rules)
    r.pos.finished = 1;
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
  r.summary.test = evaluate(*model_, r.test_data, r.test_idx, r.plan->local_batch(), comm_,
                            nullptr, nullptr, cfg_.eval.tta, r.test_batches.get());
  log::info("Test: " + std::to_string(r.summary.test.count) + " samples - accuracy: " +
            fmt("%.4f", r.summary.test.accuracy) + " - loss: " + fmt("%.4f", r.summary.test.loss));
  log::info("Throughput: " + fmt("%.0f", r.summary.images_per_sec) + " train images/s (mean over " +
            std::to_string(r.summary.epochs_run) + " epochs), " +
            fmt("%.1f", r.summary.seconds_per_epoch) + " s/epoch");
  agree(comm_, [&] {
    if (rank == 0) write_summary_file(cfg_.run_dir, cfg_.name, world, r.summary);
    if (r.tensorboard) r.tensorboard->write_test(r.summary.test, r.pos.epoch);
  });
}

TrainSummary Trainer::run() {
  run_ = std::make_unique<Run>();
  Run& r = *run_;
  if (!setup(r)) return r.summary;
  for (int64_t epoch = r.pos.epoch; epoch < cfg_.train.epochs && !r.stop_early; ++epoch) {
    const int64_t first = epoch == r.pos.epoch ? r.pos.step_in_epoch : 0;
    if (!run_epoch(r, epoch, first)) {
      r.summary.stopped_by_signal = true;
      return r.summary;
    }
  }
  finish(r);
  return r.summary;
}

}  // namespace dpt
