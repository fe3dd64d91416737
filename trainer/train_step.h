// One data-parallel training step, shared by the Trainer and the multi-rank tests.
#pragma once
#include "comm/gradient_reducer.h"
#include "data/batches.h"
#include "models/layers/softmax_cross_entropy.h"
#include "models/model.h"
#include "trainer/optim/optimizers.h"

namespace dpt {

struct StepResult {
  LossStats stats;           // this rank's samples only
  double allreduce_sec = 0;  // time spent waiting for gradient all-reduces
  // The loss on every rank and the all-reduced gradients are finite; when false, the
  // optimizer did not run. Every rank reaches the same verdict (see train_step).
  bool finite = true;
};

// forward -> loss -> backward (buckets all-reduced as layers finish) -> optimizer step.
// batch may be null when this rank has no samples left in the epoch: it then contributes a
// zero gradient to the same collectives. global_count is the number of samples in this step
// over all ranks: the loss gradient is scaled by 1/global_count, so the summed gradients are
// the mean over the global batch, exactly as one process on the whole batch computes it.
// Note [non-finite verdict]: a rank whose loss is NaN or infinite writes a NaN into its loss
// gradient, so that every rank's all-reduced gradient is non-finite: the gradient all-reduce
// every step makes anyway carries the verdict, and no extra collective is needed.
// label_smoothing: see SoftmaxCrossEntropy::compute.
StepResult train_step(Model& model, GradientReducer& reducer, Optimizer& optimizer,
                      const Batch* batch, int64_t global_count, const StepContext& ctx, float lr,
                      float label_smoothing = 0);

// The first trainable parameter (in model order) whose gradient holds a NaN or infinity, as
// "layer 'dense' (Dense) kernel"; "" if none.
std::string first_non_finite_gradient(Model& model);

}  // namespace dpt
