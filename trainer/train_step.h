// One data-parallel training step, shared by the Trainer and the multi-rank tests.
#pragma once
#include "comm/gradient_reducer.h"
#include "data/batches.h"
#include "models/layers/softmax_cross_entropy.h"
#include "models/model.h"
#include "trainer/optimizers.h"

namespace dpt {

struct StepResult {
  LossStats stats;          // this rank's samples only
  double allreduce_sec = 0;  // time spent waiting for gradient all-reduces
};

// forward -> loss -> backward (buckets all-reduced as layers finish) -> optimizer step.
// batch may be null when this rank has no samples left in the epoch: it then contributes a
// zero gradient to the same collectives. global_count is the number of samples in this step
// over all ranks: the loss gradient is scaled by 1/global_count, so the summed gradients are
// the mean over the global batch, exactly as one process on the whole batch computes it.
StepResult train_step(Model& model, GradientReducer& reducer, Optimizer& optimizer,
                      const Batch* batch, int64_t global_count, const StepContext& ctx, float lr);

}  // namespace dpt
