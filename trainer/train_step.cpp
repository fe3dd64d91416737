// One data-parallel training step, with the agreed finiteness check before the update.
#include "trainer/train_step.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/finite.h"
#include "core/trace.h"

namespace dpt {

namespace {
bool buffer_finite(const float* p, int64_t n, bool on_device) {
  return on_device ? all_finite_on_device(p, size_t(n)) : all_finite(p, n);
}
}  // namespace

StepResult train_step(Model& model, GradientReducer& reducer, Optimizer& optimizer,
                      const Batch* batch, int64_t global_count, const StepContext& ctx, float lr,
                      float label_smoothing) {
  StepResult r;
  reducer.begin_step();
  if (batch && batch->n > 0) {
    const Tensor& logits = model.forward(batch->x, ctx);
    Tensor& dlogits = model.logits_grad();
    {
      trace::Span span("loss", "softmax cross-entropy");
      r.stats = SoftmaxCrossEntropy::compute(logits, batch->labels(), &dlogits,
                                             1.0f / float(global_count), label_smoothing);
    }
    if (!std::isfinite(r.stats.loss_sum)) {  // Note [non-finite verdict]
      const float nan = std::numeric_limits<float>::quiet_NaN();
      copy_memory(dlogits.data(), dlogits.on_device(), &nan, false, sizeof nan);
    }
    model.backward([&](int layer) { reducer.on_layer_done(layer); });
  } else {
    Tensor& g = model.grads();
    zero_memory(g.data(), g.on_device(), size_t(g.size()) * sizeof(float));
  }
  r.allreduce_sec = reducer.finish_step();
  Tensor& g = model.grads();
  r.finite = buffer_finite(g.data(), g.size(), g.on_device());
  if (r.finite) {
    trace::Span span("optimizer", "optimizer step");
    optimizer.step(model.weights().data(), g.data(), lr);
  }
  return r;
}

std::string first_non_finite_gradient(Model& model) {
  for (size_t k = 0; k < model.params().size(); ++k) {
    const Param& p = model.params()[k];
    if (!p.grad) continue;
    if (!buffer_finite(p.grad, p.size(), model.device() == Device::kCuda))
      return model.layers()[size_t(model.param_layer(k))]->label() + " " + p.spec.name;
  }
  return "";
}

}  // namespace dpt
