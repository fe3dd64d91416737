// Trainer: the data-parallel training loop, checkpoints and resume, validation, early stopping,
// test.
#pragma once
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"
#include "trainer/run_files.h"
#include "trainer/train_step.h"

namespace dpt {

struct TrainOptions {
  // "" (fresh), "auto" (newest good checkpoint, or fresh), or a checkpoint path.
  std::string resume;
  // A fresh run in a run_dir holding another run's files moves them aside instead of refusing.
  bool overwrite = false;
  // dptrain profile: end the run once the train.trace window is written (no final evaluation).
  bool stop_after_trace = false;
};

// Set-up (trainer_setup.cpp): agree on the model, take the run directory, load the resumed
// state and the data, open the run files, start communication. Then the loop (trainer.cpp):
// epochs of steps with interval metrics, validation, checkpoints and stop signals; and the
// finish: the final checkpoint and the test.
class Trainer {
 public:
  Trainer(Config cfg, Communicator& comm, TrainOptions options = {});
  ~Trainer();
  TrainSummary run();
  Model& model() { return *model_; }

 private:
  struct Run;          // per-run state (data plan, optimizer, reducer, ...): run_state.h
  bool setup(Run& r);  // false: --resume found the run already complete
  void claim_run_directory(Run& r, std::string* resume_path);
  void load_state_and_data(Run& r, const std::string& resume_path);
  void resume_from(Run& r, const std::string& path);
  void load_data(Run& r);
  void open_run_files(Run& r);
  void start_communication(Run& r);
  bool run_epoch(Run& r, int64_t epoch, int64_t first_step);  // false: stopped by a signal
  bool step(Run& r, int64_t epoch, int64_t step);             // false: stopped by a signal
  void account_step(Run& r, const StepResult& res, int64_t epoch, int64_t step);
  void record_non_finite(Run& r, int64_t epoch, int64_t step);
  void flush_interval(Run& r, int64_t epoch, int64_t step);
  void end_of_epoch(Run& r, int64_t epoch, double seconds);
  void finish(Run& r);
  bool should_stop_early(Run& r, double value);
  void save_checkpoint(Run& r);
  bool stop_requested();
  void check_same_model();  // collective: every rank runs the same layers and shapes
  void broadcast_weights();
  void sync_batch_norm(Run& r);

  Config cfg_;
  Communicator& comm_;
  TrainOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Run> run_;
};

}  // namespace dpt
