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

namespace {

// The softmax of one row of logits, in double, shifted by the largest logit (exp never overflows).
void softmax_row(const float* z, int64_t classes, double* p) {
  const float top = *std::max_element(z, z + classes);
  double total = 0;
  for (int64_t c = 0; c < classes; ++c) total += p[c] = std::exp(double(z[c]) - top);
  for (int64_t c = 0; c < classes; ++c) p[c] /= total;
}

// Logits copied to the host (where the confusion matrix is counted).
Tensor to_host(const Tensor& out, Tensor& buffer) {
  copy_memory(buffer.data(), false, out.data(), out.on_device(), size_t(out.size()) * sizeof(float));
  return Tensor::view(buffer.data(), out.shape());
}

}  // namespace

EvalBatches::EvalBatches(const ShardData& data, int64_t batch, Device device, bool tta_flip)
    : plain_(std::make_unique<BatchSource>(data, batch, 2, device)) {
  if (tta_flip) mirrored_ = std::make_unique<BatchSource>(data, batch, 2, device);
}

EvalBatches::~EvalBatches() = default;

EvalResult evaluate(Model& model, const ShardData& data, const std::vector<int64_t>& indices,
                    int64_t batch, Communicator& comm, std::vector<int32_t>* predictions,
                    std::vector<float>* probabilities, bool tta_flip, EvalBatches* batches) {
  const int64_t classes = model.num_classes();
  DPT_CHECK(data.classes <= classes, "the data has " << data.classes << " classes but the model "
                                      "outputs " << classes);
  // loss, correct, the confusion matrix and the sample count: one all-reduce for all of them.
  std::vector<double> sums(size_t(3 + classes * classes), 0.0);
  const int64_t n = int64_t(indices.size());
  if (n > 0) {
    const int64_t steps = (n + batch - 1) / batch;
    std::unique_ptr<EvalBatches> own;
    if (!batches) batches = (own = std::make_unique<EvalBatches>(data, batch, model.device(), tta_flip)).get();
    DPT_ASSERT(!tta_flip || batches->mirrored());
    BatchSource& source = batches->plain();
    source.start(indices, batch, 0, steps, AugmentSpec{}, 0, 0, 0);
    BatchSource* mirrored = tta_flip ? batches->mirrored() : nullptr;  // every image flipped
    if (mirrored) {
      AugmentSpec flip_all;
      flip_all.mirror = true;
      mirrored->start(indices, batch, 0, steps, flip_all, 0, 0, 0);
    }
    std::vector<int64_t> confusion(size_t(classes * classes), 0);
    StepContext ctx;
    ctx.mode = Mode::kInfer;
    Tensor buffer({batch, classes}), buffer2({batch, classes});
    std::vector<double> p(static_cast<size_t>(classes)), q(static_cast<size_t>(classes));
    for (int64_t s = 0; s < steps; ++s) {
      const Batch& b = source.next();
      const Tensor& out = model.forward(b.x, ctx);
      if (!tta_flip) {
        const LossStats st = SoftmaxCrossEntropy::compute(out, b.labels(), nullptr, 1.0f);
        sums[0] += st.loss_sum;
        sums[1] += double(st.correct);
      }
      const Tensor logits = to_host(out, buffer);
      Tensor other;
      if (tta_flip) other = to_host(model.forward(mirrored->next().x, ctx), buffer2);
      for (int64_t i = 0; i < b.n; ++i) {
        softmax_row(logits.data() + i * classes, classes, p.data());
        if (tta_flip) {
          softmax_row(other.data() + i * classes, classes, q.data());
          for (int64_t c = 0; c < classes; ++c) p[size_t(c)] = 0.5 * (p[size_t(c)] + q[size_t(c)]);
        }
        const int32_t y = b.y[size_t(i)];
        const int64_t guess = std::max_element(p.begin(), p.end()) - p.begin();
        if (tta_flip) {
          sums[0] -= std::log(std::max(p[size_t(y)], 1e-300));
          sums[1] += guess == y;
        }
        confusion[size_t(y * classes + guess)]++;
        if (predictions) predictions->push_back(int32_t(guess));
        if (probabilities)
          for (int64_t c = 0; c < classes; ++c) probabilities->push_back(float(p[size_t(c)]));
      }
    }
    source.stop();
    if (mirrored) mirrored->stop();
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
