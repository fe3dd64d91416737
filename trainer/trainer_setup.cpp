// The trainer's set-up: every rank agrees on the model, rank 0 takes the run directory, every
// rank loads the resumed state and its data, then communication starts. Nothing of the run is
// written before every failure that can be found early has been (Note [agreeing on errors]).
#include <unistd.h>

#include <filesystem>
#include <random>

#include "comm/agree.h"
#include "comm/backend.h"
#include "core/device_memory.h"
#include "core/files.h"
#include "core/safe_files.h"
#include "models/whitening.h"
#include "trainer/log.h"
#include "trainer/run_state.h"
#include "trainer/signals.h"

namespace dpt {

namespace {

std::string new_run_id() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08x%08x", unsigned(rd()), unsigned(rd()) ^ unsigned(::getpid()));
  return buf;
}

bool same_folder(const std::string& a, const std::string& b);

bool is_inside(const std::string& path, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string p = fs::weakly_canonical(path, ec).string();
  const std::string d = fs::weakly_canonical(dir, ec).string();
  return p == d || p.rfind(d + "/", 0) == 0;
}

bool same_folder(const std::string& a, const std::string& b) {
  return is_inside(a, b) && is_inside(b, a);
}

}  // namespace

Trainer::Trainer(Config cfg, Communicator& comm, TrainOptions options)
    : cfg_(std::move(cfg)), comm_(comm), options_(std::move(options)) {
  model_ = std::make_unique<Model>(cfg_.model, cfg_.name);
  DPT_CHECK(model_->num_trainable() > 0,
            "the model has no trainable parameters (every layer is frozen or has none), so "
            "training would change nothing: make a layer trainable");
  model_->initialize(cfg_.train.seed);
}

Trainer::~Trainer() {
  comm_.set_location(nullptr);  // it pointed into this run's state
}

namespace {
// The resolved config without data.dir, which node-local copies may set per node.
std::string config_to_compare(const Config& cfg) {
  YAML::Node root = YAML::Load(cfg.resolved);  // dptrain's own emitted text
  if (root["data"].IsMap()) root["data"].remove("dir");
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}
}  // namespace

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
    DPT_CHECK(!d.differ, "this rank's model differs from rank 0's at layer "
                             << d.layer << ": rank 0 has '" << d.a << "', this rank has '" << d.b
                             << "'. Every rank must run the same config");
  });
}

void Trainer::broadcast_weights() {
  if (comm_.size() == 1) return;
  comm_.broadcast(model_->weights().data(), size_t(model_->weights().size()) * sizeof(float), 0);
  if (model_->state().size() > 0)
    comm_.broadcast(model_->state().data(), size_t(model_->state().size()) * sizeof(float), 0);
}

// Rank 0 takes the run directory (lock, leftovers, refusal to mix with another run) and picks
// the checkpoint to resume from; every rank learns the outcome.
namespace {

// The run a run directory belongs to (Note [run marker]); without a marker (a directory of an
// older dptrain), the run of the newest checkpoint in its checkpoint folder; "" if unknown.
std::string owner_run(const std::string& run_dir, const std::string& ckpt_dir) {
  const std::string marked = read_run_marker(run_dir);
  if (!marked.empty()) return marked;
  const std::string newest = newest_checkpoint(ckpt_dir, nullptr);
  try {
    return newest.empty() ? "" : checkpoint_run_id(newest);
  } catch (const Error&) {
    return "";
  }
}

// The checkpoint.dir the earlier run of run_dir used (its config.yaml), or "" if unknown.
std::string earlier_checkpoint_dir(const std::string& run_dir) {
  try {
    return load_config(run_dir + "/config.yaml").checkpoint.dir;
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

// Rank 0 takes the run directory (locks, leftovers, the rule that two runs never mix, by every
// way in) and picks the checkpoint to resume from; every rank learns the outcome.
void Trainer::claim_run_directory(Run& r, std::string* resume_path) {
  const std::string& run_dir = cfg_.run_dir;
  const std::string& ckpt = cfg_.checkpoint.dir;
  agree(comm_, [&] {
    if (comm_.rank() != 0) return;
    // First, before anything is created: never inside another run's folders, nor around them:
    // run_dir = another run's checkpoints, checkpoint.dir = another run's run_dir or a folder below
    // its checkpoints.
    for (const auto& [dir, key] : {std::pair{run_dir, "run_dir"}, {ckpt, "checkpoint.dir"}}) {
      const std::string other = enclosing_run(dir, run_dir);
      DPT_CHECK(other.empty(), key << " '" << dir << "' lies inside '" << other
                                   << "', the run directory of another run: two runs there "
                                      "would mix their files; give this run a folder of its own");
    }
    make_user_directory(run_dir, "run_dir");
    r.run_lock = std::make_unique<RunLock>(run_dir);
    // A link there is followed only if it is this user's (or root's): runs/x/checkpoints ->
    // /scratch is fine, another user's planted link is refused.
    make_user_directory(ckpt, "checkpoint.dir");
    if (!same_folder(ckpt, run_dir))  // Note [run lock]: also inside run_dir
      r.ckpt_lock = std::make_unique<RunLock>(ckpt);
    for (const std::string& dir : {run_dir, ckpt})
      for (const auto& f : remove_stale_temporaries(dir))
        r.notes.push_back("Removed '" + f + "', a temporary file of a writer that died");
    r.earlier_files = earlier_run_files(run_dir, ckpt);
    const size_t n = r.earlier_files.size();
    const std::string earlier = n == 0
                                    ? ""
                                    : "'" + r.earlier_files.front() + "'" +
                                          (n > 1 ? " and " + std::to_string(n - 1) + " more" : "");
    if (options_.resume.empty()) {
      DPT_CHECK(n == 0 || options_.overwrite,
                "run_dir '" << run_dir << "' already holds files of an earlier run (" << earlier
                            << "); continue that run with --resume auto, give this one another "
                               "run_dir, or pass --overwrite to move the old files aside");
      return;
    }
    r.earlier_files.clear();  // a resumed run keeps them
    const std::string owner = n == 0 ? "" : owner_run(run_dir, ckpt);
    if (options_.resume == "auto") {
      std::vector<std::pair<std::string, std::string>> skipped;
      *resume_path = newest_checkpoint(ckpt, &skipped);
      for (const auto& [p, why] : skipped)
        r.notes.push_back("Resume: skipping '" + p + "': " + why);
      if (resume_path->empty()) {
        // Nothing to continue from: a run that died before its first checkpoint may start
        // again here, a finished run or one that kept its checkpoints elsewhere may not.
        const std::string before = n == 0 ? "" : earlier_checkpoint_dir(run_dir);
        DPT_CHECK(n == 0 || (::access((run_dir + "/summary.yaml").c_str(), F_OK) != 0 &&
                             (before.empty() || same_folder(before, ckpt))),
                  "--resume auto: checkpoint.dir '"
                      << ckpt << "' has no checkpoint, but run_dir '" << run_dir
                      << "' holds files of an earlier run (" << earlier << ")"
                      << (before.empty() || same_folder(before, ckpt)
                              ? ""
                              : " whose checkpoints went to '" + before + "'")
                      << ": starting fresh would mix the two runs. Resume with --set "
                         "checkpoint.dir=<that run's checkpoint folder>, or give this run "
                         "another run_dir");
        r.notes.push_back("Resume: no usable checkpoint in " + ckpt + "; starting fresh");
        return;
      }
    } else {
      *resume_path = options_.resume;
    }
    std::string theirs;
    try {
      theirs = checkpoint_run_id(*resume_path);
    } catch (const Error&) {
      return;  // unreadable: reading it (load_state_and_data) says what is wrong with it
    }
    DPT_CHECK(owner.empty() || !theirs.empty(),
              "--resume " << options_.resume << ": checkpoint '" << *resume_path
                          << "' predates run ids (format 1), so nothing shows that it belongs to "
                             "the run whose files run_dir '"
                          << run_dir << "' holds (" << earlier
                          << "): resume it into a run_dir of its own");
    DPT_CHECK(owner.empty() || owner == theirs,
              "--resume " << options_.resume << ": checkpoint '" << *resume_path
                          << "' belongs to run " << (theirs.empty() ? "(no id)" : theirs)
                          << ", but run_dir '" << run_dir << "' holds the files of run " << owner
                          << " (" << earlier
                          << "): resuming here would mix the two runs. Give "
                             "this run another run_dir, or resume a checkpoint of that run");
    DPT_CHECK(n == 0 || !owner.empty(),
              "--resume " << options_.resume << ": run_dir '" << run_dir
                          << "' holds files of an earlier run (" << earlier
                          << ") that cannot be told apart from another run's (no " << kRunMarker
                          << ", no checkpoint): give this run another run_dir");
  });
  uint64_t len = resume_path->size();
  comm_.broadcast(&len, sizeof len, 0);
  resume_path->resize(len);
  if (len > 0) comm_.broadcast(resume_path->data(), len, 0);
}

// Every rank: the device, the precision, the optimizer, the resumed state, its shards and its
// test slice. Any failure here is agreed on before a single file of the run is written.
void Trainer::load_state_and_data(Run& r, const std::string& path) {
  const TrainConfig& tc = cfg_.train;
  std::string gpu;
  agree(comm_, [&] {
    r.device = select_device(tc.backend, comm_);  // before any GPU allocation
    if (r.device == Device::kCuda) gpu = current_gpu_uuid();
  });
  // Its all-reduce comes first and cannot fail alone, so every rank reaches it.
  agree(comm_, [&] { check_one_gpu_per_rank(r.device, gpu, comm_); });
  agree(comm_, [&] {
    r.precision = resolve_precision(tc.precision, r.device == Device::kCuda);
    if (!r.precision.reason.empty())
      r.notes.push_back(std::string("Precision: auto chose ") +
                        precision_name(r.precision.precision) + ": " + r.precision.reason);
    if (r.device == Device::kCpu) r.notes.push_back("CPU kernels: " + cpu_kernel_choices());
    r.optimizer = make_optimizer(tc.optimizer, model_->num_trainable(), r.device);
    r.optimizer->set_ranges(optimizer_ranges(*model_, tc.optimizer));
    if (tc.lookahead.on) r.lookahead = std::make_unique<Lookahead>(tc.lookahead, *r.optimizer);
    r.pos.seed = tc.seed;
    r.pos.run_id = new_run_id();
    if (!path.empty()) resume_from(r, path);
    if (!r.summary.already_complete) load_data(r);
  });
}

void Trainer::resume_from(Run& r, const std::string& path) {
  const TrainConfig& tc = cfg_.train;
  const int world = comm_.size();
  std::string warning;
  r.pos = read_checkpoint(path, *model_, r.optimizer.get(), &warning);
  if (!warning.empty()) r.warnings.push_back(warning);
  r.resumed = true;
  DPT_CHECK(r.pos.seed == tc.seed, "checkpoint '" << path << "' was trained with train.seed "
                                                  << r.pos.seed << " but the config says "
                                                  << tc.seed << "; use the same seed");
  if (r.pos.finished && (r.pos.early_stopped || r.pos.epoch >= tc.epochs)) {
    r.summary.already_complete = true;
    r.summary.last_checkpoint = path;
    return;
  }
  // A mid-epoch position counts steps of the checkpoint's batch size: with another one it
  // would skip or repeat samples of the epoch (and its step count would no longer add up).
  if (r.pos.step_in_epoch > 0) {
    const int64_t theirs = config_of_checkpoint(path).train.batch_size;
    DPT_CHECK(theirs == tc.batch_size,
              "checkpoint '" << path << "' was written mid-epoch (step " << r.pos.step_in_epoch
                             << " of epoch " << r.pos.epoch + 1 << ") with train.batch_size "
                             << theirs << ", but this run has " << tc.batch_size
                             << ": resume with batch_size " << theirs
                             << ", or from a checkpoint written at the end of an epoch");
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

void Trainer::load_data(Run& r) {
  r.plan = std::make_unique<DataPlan>(cfg_.data, cfg_.train.batch_size, comm_.rank(), comm_.size());
  const ShardData& data = r.plan->train_data();
  const Shape data_shape{data.height, data.width, data.channels};
  DPT_CHECK(model_->input_shape() == data_shape,
            "config model.input is " << shape_str(model_->input_shape()) << " but the "
                                     << cfg_.data.dataset << " shards hold images of "
                                     << shape_str(data_shape));
  DPT_CHECK(model_->num_classes() == data.classes, "the model's last layer has "
                                                       << model_->num_classes() << " units but "
                                                       << cfg_.data.dataset << " has "
                                                       << data.classes << " classes");
  r.test_data = load_test_slice(cfg_.data, comm_.rank(), comm_.size(), &r.test_idx);
  DPT_CHECK(r.test_data.height == data.height && r.test_data.width == data.width &&
                r.test_data.channels == data.channels && r.test_data.classes == data.classes,
            "the test file in '" << cfg_.data.dir << "' holds " << r.test_data.height << "x"
                                 << r.test_data.width << "x" << r.test_data.channels
                                 << " images of " << r.test_data.classes
                                 << " classes, unlike the train shards; re-run dptrain prepare");
  DPT_CHECK(r.test_data.prepare_id == r.plan->prepare_id(),
            "the test file in '" << cfg_.data.dir << "' has prepare_id '" << r.test_data.prepare_id
                                 << "' but the train shards have '" << r.plan->prepare_id()
                                 << "': they come from two different prepares; re-run dptrain "
                                    "prepare into an empty --out");
  const size_t old = r.plan->unchecked_files().size() + r.test_data.unchecked_files.size();
  if (old > 0)
    r.warnings.push_back(std::to_string(old) + " data file(s) in " + cfg_.data.dir +
                         " were written before checksums (shard format 1): corruption in "
                         "them cannot be detected; re-run dptrain prepare to add them");
}

void Trainer::open_run_files(Run& r) {
  const int rank = comm_.rank();
  agree(comm_, [&] {
    if (rank != 0) return;
    if (!r.earlier_files.empty())
      r.notes.push_back("Moved the earlier run's files to " +
                        move_aside(cfg_.run_dir, r.earlier_files) + " (--overwrite)");
    write_run_marker(cfg_.run_dir, r.pos.run_id);
    write_config_file(cfg_.run_dir, cfg_.resolved);
    // A resumed run drops the rows its predecessor logged after the checkpoint.
    const int64_t keep = r.resumed ? r.pos.global_step : options_.resume.empty() ? -1 : 0;
    r.csv = std::make_unique<MetricsCsv>(cfg_.run_dir + "/metrics.csv", keep);
    if (!r.csv->dropped_rows().empty()) r.warnings.push_back(r.csv->dropped_rows());
    if (cfg_.train.tensorboard)  // per-epoch tags count epochs: keep those the checkpoint holds
      r.tensorboard = std::make_unique<TensorBoardWriter>(
          cfg_.run_dir + "/tensorboard", keep, r.resumed ? r.pos.epoch : keep, cfg_.resolved);
    log::init(0, cfg_.run_dir + "/log.txt");
  });
  if (rank != 0) log::init(rank, "");
  if (cfg_.train.trace_to > 0)
    r.trace = std::make_unique<TraceWindow>(cfg_.train.trace_from, cfg_.train.trace_to,
                                            cfg_.run_dir + "/train.trace.json",
                                            !options_.stop_after_trace);
  for (const auto& n : r.notes) log::info(n);
  for (const auto& w : r.warnings) log::warn(w);
}

void Trainer::start_communication(Run& r) {
  const TrainConfig& tc = cfg_.train;
  const int world = comm_.size();
  if (!r.resumed) {  // Note [whitening]: from this rank's images; rank 0's are broadcast
    const ShardData& d = r.plan->train_data();
    const std::string said =
        whiten_from_images(*model_, d.images.data(), d.n, d.height, d.width, d.channels);
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
            comm_.backend() + "), " + std::to_string(r.plan->global_train_samples()) + " train / " +
            std::to_string(r.plan->global_val_samples()) + " validation samples, global batch " +
            std::to_string(tc.batch_size) + " (" + split + " per rank), " +
            std::to_string(r.plan->steps_per_epoch()) + " steps per epoch, precision " +
            precision_name(r.precision.precision) + (r.precision.reason.empty() ? "" : " (auto)"));
  // Which node holds which ranks (and so which GPU each takes: the one of its local rank).
  if (world > 1) log::info("dptrain: " + comm_.node_table());
  r.reducer =
      std::make_unique<GradientReducer>(*r.grad_comm, *model_, int64_t(tc.bucket_mb * (1 << 20)),
                                        int64_t(tc.first_bucket_mb * (1 << 20)), tc.overlap);
  r.batches = std::make_unique<BatchSource>(r.plan->train_data(), r.plan->local_batch(),
                                            int(cfg_.data.prefetch), r.device);
  r.val_batches = std::make_unique<EvalBatches>(r.plan->train_data(), r.plan->local_batch(),
                                                r.device, cfg_.eval.tta);
  r.test_batches =
      std::make_unique<EvalBatches>(r.test_data, r.plan->local_batch(), r.device, cfg_.eval.tta);
  r.guard = std::make_unique<NonFiniteGuard>(tc.nonfinite, model_->state(), r.pos.skipped_steps);
}

bool Trainer::setup(Run& r) {
  // `dptrain train` installs these from main's first line; a Trainer run any other way (the
  // MPI tests) gets them here, before any slow step: a SIGTERM during set-up is acted on at
  // the first step boundary (checkpoint, exit 75 so the scripts requeue), not a silent 143.
  install_stop_signals();
  comm_.set_collective_timeout(cfg_.train.collective_timeout_s);
  comm_.set_location([&r, this] {
    const int64_t steps = r.plan ? r.plan->steps_per_epoch() : 0;
    return "epoch " + std::to_string(r.pos.epoch + 1) + "/" + std::to_string(cfg_.train.epochs) +
           ", step " + std::to_string(r.pos.step_in_epoch) + "/" + std::to_string(steps);
  });
  r.meter = std::make_unique<IntervalMeter>(comm_, model_->num_classes());
  // Note [ranks agree]: ranks started with different configs (an MPMD launch, a config edited
  // while they start) would exchange buffers of different sizes: refused by name, the model's
  // layers first (the most telling difference), then the rest of the resolved config. data.dir
  // may differ (node-local copies); the data manifest below must not.
  check_same_model();
  check_same_on_all_ranks(comm_, config_to_compare(cfg_), "resolved config",
                          "Every rank must run the same config and --set options");
  std::string resume_path;
  claim_run_directory(r, &resume_path);
  load_state_and_data(r, resume_path);
  if (r.plan)
    check_same_on_all_ranks(comm_, r.plan->manifest(), "view of the training data (data.dir)",
                            "Every rank must see the same shards: copy the same prepare's "
                            "files to every node");
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

}  // namespace dpt
