// Config: the YAML run description, parsed strictly, with --set overrides applied first.
#pragma once
#include <yaml-cpp/yaml.h>

#include "core/precision.h"

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
  int64_t prefetch = 3;              // batches prepared ahead by the background thread
  int64_t max_train_samples = 0;     // 0 = all; for quick experiments and tests
  int64_t max_test_samples = 0;
};

struct OptimizerConfig {
  std::string kind = "adam";  // sgd | adam | adamw
  double lr = 1e-3, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  bool decay_bias_and_norm = true;  // false: no weight decay on biases and BatchNorm gamma/beta
  double norm_lr_scale = 1.0;       // sgd: BatchNorm gamma/beta learn at this times lr
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;  // Keras' defaults
};

struct ScheduleConfig {
  std::string kind = "constant";  // constant | step | cosine | warmup | onecycle
  double warmup_epochs = 0;       // linear warm-up from 0, before any schedule
  double step_epochs = 10, gamma = 0.1;  // step: lr *= gamma every step_epochs
  double min_lr = 0.0;                   // cosine floor
  // onecycle (per step, linear): lr/div_factor up to lr over pct_start of all steps, then down
  // to lr/(div_factor*final_div_factor) at the last step (PyTorch's OneCycleLR, linear).
  double pct_start = 0.25, div_factor = 25, final_div_factor = 1e4;
};

struct EarlyStopping {
  std::string monitor;  // empty = off; accuracy | loss | val_accuracy | val_loss
  double target = 0;    // stop once the metric reaches it (0 = unused)
  int64_t patience = 0; // stop after this many epochs without improvement (0 = unused)
  double min_delta = 0;
};

// Note [lookahead]: every every_steps steps from start_epoch on, the slow weights move toward
// the network's, slow = rho slow + (1 - rho) w, and the network takes them (w = slow); at the
// end of every epoch the network takes the slow weights again. rho = decay * (t / T)^ramp_power
// at completed step t of T: little averaging early, decay at the end (airbench's EMA
// "lookahead"; Zhang et al. 2019 with a ramped alpha). The slow weights are optimizer state
// ("lookahead" in checkpoints), so a resume is exact.
struct LookaheadConfig {
  bool on = false;
  int64_t every_steps = 5;
  double decay = 0.7738;  // 0.95^5
  int64_t start_epoch = 0;
  double ramp_power = 3;
};

struct TrainConfig {
  int64_t epochs = 1;
  int64_t batch_size = 32;  // global batch across all ranks
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  uint64_t seed = 1;
  std::string backend = "cpu";
  int64_t log_every_steps = 50;  // metrics.csv row and metric all-reduce interval
  double bucket_mb = 25, first_bucket_mb = 1;  // gradient all-reduce buckets
  bool overlap = true;  // start bucket all-reduces during backward
  EarlyStopping early_stopping;
  std::string nonfinite = "abort";     // abort | skip: a step whose loss or gradient is NaN/inf
  double collective_timeout_s = 300;   // Note [collective timeout]; 0 = wait forever
  Precision precision = Precision::kFp32;  // Note [precision] (core/precision.h)
  double label_smoothing = 0;  // targets (1 - s) one-hot + s / classes, as Keras' CE
  bool tensorboard = true;  // rank 0 writes run_dir/tensorboard event files (trainer/tensorboard.h)
  LookaheadConfig lookahead;
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
  bool test_every_epoch = false; // bench/time_to_accuracy.sh: the test accuracy per epoch
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
void apply_override(YAML::Node& root, const std::string& assignment);

}  // namespace dpt
