// Checkpoint: HDF5 files holding everything needed to continue a run exactly, written atomically.
#pragma once
#include <string>
#include <vector>

#include "models/model.h"
#include "trainer/optimizers.h"

namespace dpt {

constexpr int64_t kCheckpointFormatVersion = 1;

// Where a run stands: enough to continue bit-for-bit (see docs/CHECKPOINTS.md).
struct TrainPosition {
  int64_t epoch = 0;          // 0-based epoch in progress (== epochs done if step_in_epoch == 0)
  int64_t step_in_epoch = 0;  // steps of that epoch already taken
  int64_t global_step = 0;
  uint64_t seed = 0;
  int64_t world_size = 1;
  double epoch_sums[3] = {0, 0, 0};  // loss, correct, count of the partial epoch
  double best_metric = 0;            // early stopping
  int64_t since_best = 0;
  int64_t has_best = 0;
};

// "ckpt-EEEE-SSSSSSSS.h5": epoch and global step, so names sort in training order.
std::string checkpoint_name(int64_t epoch, int64_t global_step);

// Writes to a temporary name, flushes and fsyncs, then renames; marks the file complete only
// after everything else is written. Keeps the newest `keep` checkpoints in dir.
std::string write_checkpoint(const std::string& dir, Model& model, Optimizer& opt,
                             const TrainPosition& pos, const std::string& config_text, int keep);

// Loads into model and optimizer after checking format version, completeness and the model
// signature (naming the first differing layer). Throws dpt::Error, leaving model untouched on
// failure.
TrainPosition read_checkpoint(const std::string& path, Model& model, Optimizer* opt);

// The resolved config text stored in a checkpoint (for `dptrain eval`).
std::string checkpoint_config(const std::string& path);

// Newest complete, readable checkpoint in dir, or "" if none. Files that fail to open or lack
// the completion mark are skipped (and reported through `skipped`).
std::string newest_checkpoint(const std::string& dir, std::vector<std::string>* skipped);

}  // namespace dpt
