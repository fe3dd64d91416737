// The run directory (rank 0): config.yaml, metrics.csv, summary.yaml, the run lock, leftovers.
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include "models/kernels/precision_support.h"
#include "trainer/evaluator.h"
#include "trainer/sharing/metrics_row.h"

namespace dpt {

// Appends rows to metrics.csv; every write is checked (a full disk is an error, not silence).
class MetricsCsv {
 public:
  // keep_through_step >= 0 (a resumed run): rows after that global step were written by the
  // interrupted run after its checkpoint and are dropped, so no step appears twice.
  MetricsCsv(const std::string& path, int64_t keep_through_step);
  ~MetricsCsv();
  MetricsCsv(const MetricsCsv&) = delete;
  void write(const MetricsRow& r);
  // "N row(s) of ... were dropped" when the file held rows dptrain did not write; else "".
  const std::string& dropped_rows() const { return dropped_rows_; }

 private:
  std::string path_, dropped_rows_;
  int fd_ = -1;  // appended with O_NOFOLLOW (Note [file safety])
};

// What a finished run reports (console, summary.yaml).
struct TrainSummary {
  int64_t epochs_run = 0;
  double images_per_sec = 0;  // global training images per second, mean over epochs
  double seconds_per_epoch = 0;
  int64_t samples_last_epoch = 0;  // training samples seen over all ranks in the last epoch
  int64_t skipped_steps = 0;       // non-finite steps skipped over the whole run
  bool stopped_by_signal = false;  // checkpointed on SIGTERM/SIGUSR1; resume to finish
  bool already_complete = false;   // --resume auto found a finished run: nothing was done
  std::string last_checkpoint;
  PrecisionChoice precision;  // what train.precision resolved to (auto), and why
  EvalResult test;
};

void write_config_file(const std::string& run_dir, const std::string& resolved_yaml);
void write_summary_file(const std::string& run_dir, const std::string& name, int world_size,
                        const TrainSummary& s);

// Note [run lock]: rank 0 holds an flock on <dir>/.dptrain.lock for the whole run, in run_dir
// and in checkpoint.dir (also when it lies inside run_dir, so that another run whose
// checkpoint.dir points into this one's is refused too); the kernel releases it when the
// process dies, however it dies. A second run on the same directory is refused at once, naming
// the PID and host of the holder (from the lock file's text). The lock file is never opened
// through a link, and another user's is refused (Note [file safety]).
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Files of an earlier run in run_dir / ckpt_dir (checkpoints, metrics.csv, summary.yaml,
// config.yaml, log.txt, tensorboard/, the run marker): a fresh run refuses to mix with them.
std::vector<std::string> earlier_run_files(const std::string& run_dir, const std::string& ckpt_dir);

// Note [run marker]: run_dir/.dptrain-run names the run that owns the directory ("run_id:
// ID", the id its checkpoints carry), so that no way in (a fresh run, --resume PATH, --resume
// auto with another checkpoint.dir) mixes two runs' files.
inline constexpr const char* kRunMarker = ".dptrain-run";

// The nearest folder at or above dir that is another run's run directory (holds its marker),
// other than own_run_dir; "" if none. A run inside another run's folders would mix with it.
std::string enclosing_run(const std::string& dir, const std::string& own_run_dir);
void write_run_marker(const std::string& run_dir, const std::string& run_id);
std::string read_run_marker(const std::string& run_dir);  // "" when there is none

// --overwrite: moves them into an overwritten-YYYYmmdd-HHMMSS folder that did not exist before
// (-2, -3, ... when it did), one per source folder (so checkpoint.dir on another filesystem
// works); returns the folder(s).
std::string move_aside(const std::string& run_dir, const std::vector<std::string>& files);

}  // namespace dpt
