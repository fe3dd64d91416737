// Exact evaluation over a rank's samples with one all-reduce of sums and the confusion matrix.
#include "trainer/evaluator.h"

#include <algorithm>
#include <cmath>

#include "data/batch_source.h"
#include "models/layers/softmax_cross_entropy.h"

namespace dpt {

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> acc(size_t(classes), 0.0);
  for (int64_t c = 0; c < classes; ++c) {
    int64_t total = 0;
    for (int64_t p = 0; p < classes; ++p) total += confusion[size_t(c * classes + p)];
    acc[size_t(c)] = total ? double(confusion[size_t(c * classes + c)]) / double(total) : 0.0;
  }
  return acc;
}

EvalResult evaluate(Model& model, const ShardData& data, const std::vector<int64_t>& indices,
                    int64_t batch, Communicator& comm, std::vector<int32_t>* predictions,
                    std::vector<float>* probabilities) {
  const int64_t classes = model.num_classes();
  DPT_CHECK(data.classes <= classes, "the data has " << data.classes << " classes but the model "
                                      "outputs " << classes);
  // loss, correct, the confusion matrix and the sample count: one all-reduce for all of them.
  std::vector<double> sums(size_t(3 + classes * classes), 0.0);
  const int64_t n = int64_t(indices.size());
  if (n > 0) {
    BatchSource source(data, batch, 2, model.device());
    const int64_t steps = (n + batch - 1) / batch;
    source.start(indices, batch, 0, steps, AugmentSpec{}, 0, 0, 0);
    std::vector<int64_t> confusion(size_t(classes * classes), 0);
    StepContext ctx;
    ctx.mode = Mode::kInfer;
    Tensor host_logits({batch, classes});  // the confusion matrix is counted on the host
    for (int64_t s = 0; s < steps; ++s) {
      const Batch& b = source.next();
      const Tensor& out = model.forward(b.x, ctx);
      const LossStats st = SoftmaxCrossEntropy::compute(out, b.labels(), nullptr, 1.0f);
      copy_memory(host_logits.data(), false, out.data(), out.on_device(),
                  size_t(out.size()) * sizeof(float));
      const Tensor logits = Tensor::view(host_logits.data(), out.shape());
      sums[0] += st.loss_sum;
      sums[1] += double(st.correct);
      SoftmaxCrossEntropy::confusion(logits, b.y.data(), confusion.data());
      if (predictions)
        for (int64_t i = 0; i < b.n; ++i)
          predictions->push_back(
              int32_t(SoftmaxCrossEntropy::argmax(logits.data() + i * classes, classes)));
      if (probabilities)
        for (int64_t i = 0; i < b.n; ++i) {
          // In double, shifted by the largest logit: exp never overflows.
          const float* z = logits.data() + i * classes;
          const float top = *std::max_element(z, z + classes);
          double total = 0;
          for (int64_t c = 0; c < classes; ++c) total += std::exp(double(z[c]) - top);
          for (int64_t c = 0; c < classes; ++c)
            probabilities->push_back(float(std::exp(double(z[c]) - top) / total));
        }
    }
    source.stop();
    for (size_t i = 0; i < confusion.size(); ++i) sums[2 + i] = double(confusion[i]);
  }
  sums.back() = double(n);
  comm.allreduce_sum_f64(sums.data(), sums.size());
  const double count = sums.back();
  EvalResult r;
  r.count = int64_t(count);
  r.classes = classes;
  r.loss = count > 0 ? sums[0] / count : 0.0;
  r.accuracy = count > 0 ? sums[1] / count : 0.0;
  r.confusion.resize(size_t(classes * classes));
  for (size_t i = 0; i < r.confusion.size(); ++i) r.confusion[i] = int64_t(sums[2 + i] + 0.5);
  return r;
}

}  // namespace dpt
