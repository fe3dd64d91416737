// Config: the YAML run description, parsed strictly, with --set overrides applied first.
#pragma once
#include <yaml-cpp/yaml.h>

#include "core/precision.h"
#include "core/tensor.h"
#include "trainer/optim/lookahead.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizers.h"

#include <string>
#include <vector>

namespace dpt {

struct DataConfig {
  std::string dataset;  // mnist | fashion-mnist | cifar10: the shard file prefix
  std::string dir;
  double validation_split = 0.0;
  bool shuffle = true;
  int64_t random_crop_pad = 0;  // CIFAR-style: pad by this many pixels, crop back at random
  bool horizontal_flip = false;
  bool reflect_fill = false;  // augment.fill: reflect: a crop's outside pixels mirror the inside
  int64_t prefetch = 3;       // batches prepared ahead by the background thread
  int64_t max_train_samples = 0;  // 0 = all; for quick experiments and tests
  int64_t max_test_samples = 0;
};

// train.early_stopping.monitor: what is watched (kNone: early stopping is off).
enum class Monitor { kNone, kAccuracy, kLoss, kValAccuracy, kValLoss };
const char* monitor_name(Monitor m);  // the config's name: "accuracy", "val_loss", ...
inline bool higher_is_better(Monitor m) {
  return m == Monitor::kAccuracy || m == Monitor::kValAccuracy;
}

struct EarlyStopping {
  Monitor monitor = Monitor::kNone;
  double target = 0;     // stop once the metric reaches it (0 = unused)
  int64_t patience = 0;  // stop after this many epochs without improvement (0 = unused)
  double min_delta = 0;
};

// train.nonfinite: a step whose loss or gradient is NaN or infinite ends the run (abort, exit 3)
// or is skipped (skip), its update and BatchNorm statistics undone.
enum class NonFinitePolicy { kAbort, kSkip };

struct TrainConfig {
  int64_t epochs = 1;
  int64_t batch_size = 32;  // global batch across all ranks
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  uint64_t seed = 1;
  Device backend = Device::kCpu;               // train.backend: where the model computes
  int64_t log_every_steps = 50;                // metrics.csv row and metric all-reduce interval
  double bucket_mb = 25, first_bucket_mb = 1;  // gradient all-reduce buckets
  bool overlap = true;                         // start bucket all-reduces during backward
  EarlyStopping early_stopping;
  NonFinitePolicy nonfinite = NonFinitePolicy::kAbort;  // a step whose loss or gradient is NaN/inf
  double collective_timeout_s = 300;       // Note [collective timeout]; 0 = wait forever
  Precision precision = Precision::kFp32;  // Note [precision] (core/precision.h)
  double label_smoothing = 0;              // targets (1 - s) one-hot + s / classes, as Keras' CE
  bool tensorboard =
      true;  // rank 0 writes run_dir/tensorboard event files (trainer/sharing/tensorboard.h)
  LookaheadConfig lookahead;
  // train.trace: {steps: [from, to]}: the global steps (1-based, as in metrics.csv) whose
  // timeline every rank records; rank 0 writes run_dir/train.trace.json (Note [trace]).
  int64_t trace_from = 0, trace_to = 0;  // 0: off
};

struct CheckpointConfig {
  std::string dir;  // default: <run_dir>/checkpoints
  int64_t every_epochs = 1, every_steps = 0, keep = 3;
};

// Test-time augmentation: flip averages each image's softmax with its mirror's;
// flip_translate also with both of them shifted by one pixel up-left and down-right (the
// plain pair weighs 1/2, the shifted pairs 1/4 each, as airbench's level 2).
enum class Tta { kNone, kFlip, kFlipTranslate };

struct EvalConfig {
  Tta tta = Tta::kNone;
  bool test_every_epoch = false;  // bench/time_to_accuracy.sh: the test accuracy per epoch
};

struct Config {
  std::string name;
  std::string run_dir;  // default: runs/<name>
  DataConfig data;
  YAML::Node model;
  TrainConfig train;
  CheckpointConfig checkpoint;
  EvalConfig eval;
  std::string resolved;  // the whole config after overrides, as YAML text
};

// Reads path, applies "key.sub=value" overrides (value parsed as YAML), validates every key.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(const YAML::Node& root);
// The resolved config a checkpoint stores, read strictly (Note [yaml input]); errors name it.
Config config_of_checkpoint(const std::string& checkpoint);
// Config files are hand-written YAML of a few KiB; anything far larger is the wrong file.
constexpr size_t kMaxConfigBytes = 1 << 20;
void apply_override(YAML::Node& root, const std::string& assignment);

}  // namespace dpt
