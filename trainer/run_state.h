// Trainer::Run: the state of one training run, shared by the set-up and the loop.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/gradient_reducer.h"
#include "data/batch_source.h"
#include "models/kernels/precision_support.h"
#include "trainer/data_plan.h"
#include "trainer/interval_meter.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/optim/lookahead.h"
#include "trainer/sharing/tensorboard.h"
#include "trainer/trace_window.h"
#include "trainer/trainer.h"

namespace dpt {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Trainer::Run {
  // What computes, made in set-up. Members are destroyed in reverse order: the reducer (and
  // its last pending work) before the gradient communicator it uses.
  Device device = Device::kCpu;        // where the model lives (train.backend)
  PrecisionChoice precision;           // train.precision as resolved for that device
  std::unique_ptr<Communicator> nccl;  // device gradients on several GPUs
  Communicator* grad_comm = nullptr;   // all-reduces gradients and BatchNorm statistics
  std::unique_ptr<DataPlan> plan;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Lookahead> lookahead;  // train.lookahead; null when off
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<BatchSource> batches;
  std::unique_ptr<EvalBatches> val_batches, test_batches;  // made once (Note [device batch order])
  ShardData test_data;  // validated at start: a bad test file must not wait for the end
  std::vector<int64_t> test_idx;

  // The run directory (rank 0), and what set-up has to say once the log is open.
  std::unique_ptr<RunLock> run_lock, ckpt_lock;  // for the whole run
  std::unique_ptr<MetricsCsv> csv;
  std::unique_ptr<TensorBoardWriter> tensorboard;  // unless train.tensorboard: false
  std::unique_ptr<TraceWindow> trace;              // train.trace; null when off
  std::vector<std::string> notes, warnings;
  std::vector<std::string> earlier_files;  // another run's files in run_dir (fresh run)

  // Where the run stands.
  bool resumed = false;
  TrainPosition pos;
  TrainSummary summary;
  int64_t last_checkpoint_step = -1;
  bool stop_early = false;
  double lr = 0;  // of the step in progress

  // Meters of the loop.
  std::unique_ptr<IntervalMeter> meter;
  std::unique_ptr<NonFiniteGuard> guard;
  struct Epoch {
    Clock::time_point start;
    int64_t first_step = 0;
    double allreduce_sec = 0;
    int64_t skipped = 0;
  } epoch;
  Clock::time_point start = Clock::now();
  double epoch_time_total = 0;  // training seconds over the epochs run
};

}  // namespace dpt
