// One data-parallel training step.
#include "trainer/train_step.h"

namespace dpt {

StepResult train_step(Model& model, GradientReducer& reducer, Optimizer& optimizer,
                      const Batch* batch, int64_t global_count, const StepContext& ctx, float lr) {
  StepResult r;
  reducer.begin_step();
  if (batch && batch->n > 0) {
    const Tensor& logits = model.forward(batch->x, ctx);
    r.stats = SoftmaxCrossEntropy::compute(logits, batch->labels(), &model.logits_grad(),
                                           1.0f / float(global_count));
    model.backward([&](int layer) { reducer.on_layer_done(layer); });
  } else {
    Tensor& g = model.grads();
    zero_memory(g.data(), g.on_device(), size_t(g.size()) * sizeof(float));
  }
  r.allreduce_sec = reducer.finish_step();
  optimizer.step(model.weights().data(), model.grads().data(), lr);
  return r;
}

}  // namespace dpt
