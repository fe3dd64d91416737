// Trainer: the data-parallel training loop, checkpoints and resume, validation, early stopping, test.
#pragma once
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"

namespace dpt {

struct TrainSummary {
  int64_t epochs_run = 0;
  double images_per_sec = 0;       // global training images per second, mean over epochs
  double seconds_per_epoch = 0;
  int64_t samples_last_epoch = 0;  // training samples seen over all ranks in the last epoch
  bool stopped_by_signal = false;  // checkpointed on SIGTERM/SIGUSR1; resume to finish
  std::string last_checkpoint;
  EvalResult test;
};

class Trainer {
 public:
  // resume: "" (fresh), "auto" (newest complete checkpoint, or fresh), or a checkpoint path.
  Trainer(Config cfg, Communicator& comm, std::string resume = "");
  ~Trainer();
  TrainSummary run();
  Model& model() { return *model_; }

 private:
  struct Run;  // per-run state (data plan, optimizer, reducer, ...): trainer.cpp
  bool resume_from_checkpoint(Run& r);
  bool run_epoch(Run& r, int64_t epoch, int64_t first_step);  // false: stopped by a signal
  void end_of_epoch(Run& r, int64_t epoch, double seconds);
  bool should_stop_early(Run& r, double value);
  void save_checkpoint(Run& r);
  bool stop_requested();
  void check_same_model();   // collective: every rank runs the same layers and shapes
  void broadcast_weights();
  void sync_batch_norm();

  Config cfg_;
  Communicator& comm_;
  std::string resume_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Run> run_;
};

}  // namespace dpt
