// Checkpoint: HDF5 files holding everything needed to continue a run exactly, written atomically.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "models/layers/softmax_cross_entropy.h"
#include "models/model.h"
#include "trainer/optim/optimizers.h"

namespace dpt {

// 1: the first layout. 2: every dataset checksummed (Fletcher32) in the HDF5 1.10 format
// (metadata checksums), plus run_id and the finished flags. Both are read.
constexpr int64_t kCheckpointFormatVersion = 2;

// Where a run stands: enough to continue bit-for-bit (see docs/CHECKPOINTS.md).
struct TrainPosition {
  int64_t epoch = 0;          // 0-based epoch in progress (== epochs done if step_in_epoch == 0)
  int64_t step_in_epoch = 0;  // steps of that epoch already taken
  int64_t global_step = 0;
  uint64_t seed = 0;
  int64_t world_size = 1;
  LossStats epoch_stats;   // loss, correct, count of the partial epoch so far
  double best_metric = 0;  // early stopping
  int64_t since_best = 0;
  int64_t has_best = 0;
  std::string run_id;    // which run wrote it: rotation deletes only this run's files
  int64_t finished = 0;  // written at the end of training (epochs done or early stop)
  int64_t early_stopped = 0;
  int64_t skipped_steps = 0;       // non-finite steps skipped so far (train.nonfinite: skip)
  std::string precision = "fp32";  // the train.precision it was trained in (Note [precision])
};

// "ckpt-EEEE-SSSSSSSS.h5": epoch and global step, so names sort in training order.
std::string checkpoint_name(int64_t epoch, int64_t global_step);

// Refuses non-finite parameters or optimizer state (exit code kExitNonFinite), then writes to
// a temporary name, flushes and fsyncs, renames; marks the file complete only after everything
// else is written; removes the temporary file if anything fails. Keeps the newest `keep`
// checkpoints of this run (pos.run_id) in dir and never touches another run's files.
std::string write_checkpoint(const std::string& dir, Model& model, Optimizer& opt,
                             const TrainPosition& pos, const std::string& config_text, int keep);

// Loads into model and optimizer after checking format version, completeness and the model
// signature (naming the first differing layer); refuses non-finite values, naming the
// dataset. Throws dpt::Error, leaving model untouched on failure. A format-1 file (no
// checksums) loads and sets *warning.
TrainPosition read_checkpoint(const std::string& path, Model& model, Optimizer* opt,
                              std::string* warning = nullptr);

// Reads every object of the file (checksums), checks completeness, the format version and
// that every /model and /optimizer value is finite; throws naming the first bad dataset.
// Returns a warning for a format-1 file, else "".
std::string verify_checkpoint(const std::string& path);

// The id of the run that wrote a checkpoint ("" for a format-1 file); throws if it cannot be read.
std::string checkpoint_run_id(const std::string& path);

// The resolved config text stored in a checkpoint (for `dptrain eval`).
std::string checkpoint_config(const std::string& path);

// Newest checkpoint in dir that verify_checkpoint() accepts, or "" if none. Files it skips
// (incomplete, corrupt, non-finite) are reported through `skipped` as (path, reason).
std::string newest_checkpoint(const std::string& dir,
                              std::vector<std::pair<std::string, std::string>>* skipped);

// ckpt-*.h5 names in dir (temporary files excluded), oldest first.
std::vector<std::string> list_checkpoints(const std::string& dir);

}  // namespace dpt
