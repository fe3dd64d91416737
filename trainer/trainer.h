// Trainer: the data-parallel training loop, validation, early stopping and the final test.
#pragma once
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "models/model.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"

namespace dpt {

struct TrainSummary {
  int64_t epochs_run = 0;
  double images_per_sec = 0;    // global training images per second, mean over epochs
  double seconds_per_epoch = 0;
  int64_t samples_last_epoch = 0;  // training samples seen over all ranks in the last epoch
  EvalResult test;
};

class Trainer {
 public:
  Trainer(Config cfg, Communicator& comm);
  TrainSummary run();
  Model& model() { return *model_; }

 private:
  void sync_start();        // broadcast weights from rank 0 after checking model signatures
  void sync_batch_norm();   // average BatchNorm moving statistics across ranks

  Config cfg_;
  Communicator& comm_;
  std::unique_ptr<Model> model_;
};

}  // namespace dpt
