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
  copy_memory(buffer.data(), false, out.data(), out.on_device(),
              size_t(out.size()) * sizeof(float));
  return Tensor::view(buffer.data(), out.shape());
}

}  // namespace

EvalBatches::EvalBatches(const ShardData& data, int64_t batch, Device device, Tta tta) : tta_(tta) {
  auto add = [&](bool mirror, int64_t dy, int64_t dx, double weight) {
    View v;
    v.source = std::make_unique<BatchSource>(data, batch, 2, device);
    v.aug.mirror = mirror;
    v.aug.shift_y = dy;
    v.aug.shift_x = dx;
    v.aug.reflect = true;  // shifted views mirror their border in, as airbench's level 2
    v.weight = weight;
    views_.push_back(std::move(v));
  };
  const bool pairs = tta != Tta::kNone;
  const double plain = tta == Tta::kFlipTranslate ? 0.25 : pairs ? 0.5 : 1.0;
  add(false, 0, 0, plain);
  if (pairs) add(true, 0, 0, plain);
  if (tta == Tta::kFlipTranslate)
    for (int64_t d : {-1, 1}) {  // one pixel up-left, one down-right; each with its mirror
      add(false, d, d, 0.125);
      add(true, d, d, 0.125);
    }
}

EvalBatches::~EvalBatches() = default;

namespace {

// What one rank adds up: loss, correct and the confusion matrix (classes x classes).
struct EvalSums {
  double loss = 0, correct = 0;
  std::vector<int64_t> confusion;
};

// One batch of every view: the weighted mean softmax of each image (Note: with one view, the
// plain loss exactly as training computes it), then the loss, accuracy, confusion and
// predictions from it.
void evaluate_batch(Model& model, std::vector<EvalBatches::View>& views, int64_t classes,
                    Tensor& buffer, std::vector<double>& mean, EvalSums& sums,
                    std::vector<int32_t>* predictions, std::vector<float>* probabilities) {
  const bool averaged = views.size() > 1;
  StepContext ctx;
  ctx.mode = Mode::kInfer;
  std::vector<double> q(static_cast<size_t>(classes));
  std::fill(mean.begin(), mean.end(), 0.0);
  const Batch* first = nullptr;
  for (auto& v : views) {
    const Batch& b = v.source->next();
    if (!first) first = &b;
    const Tensor& out = model.forward(b.x, ctx);
    if (!averaged) {
      const LossStats st = SoftmaxCrossEntropy::compute(out, b.labels(), nullptr, 1.0f);
      sums.loss += st.loss_sum;
      sums.correct += double(st.correct);
    }
    const Tensor logits = to_host(out, buffer);
    for (int64_t i = 0; i < b.n; ++i) {
      softmax_row(logits.data() + i * classes, classes, q.data());
      for (int64_t c = 0; c < classes; ++c)
        mean[size_t(i * classes + c)] += v.weight * q[size_t(c)];
    }
  }
  const Batch& b = *first;
  for (int64_t i = 0; i < b.n; ++i) {
    const auto p = mean.begin() + i * classes;
    const int32_t y = b.y[size_t(i)];
    const int64_t guess = std::max_element(p, p + classes) - p;
    if (averaged) {
      sums.loss -= std::log(std::max(p[y], 1e-300));
      sums.correct += guess == y;
    }
    sums.confusion[size_t(y * classes + guess)]++;
    if (predictions) predictions->push_back(int32_t(guess));
    if (probabilities)
      for (int64_t c = 0; c < classes; ++c) probabilities->push_back(float(p[c]));
  }
}

// All ranks' sums in one all-reduce (reached by every rank however many batches it had).
EvalResult reduce(const EvalSums& mine, int64_t n, int64_t classes, Communicator& comm) {
  std::vector<double> sums(size_t(3 + classes * classes), 0.0);
  sums[0] = mine.loss;
  sums[1] = mine.correct;
  for (size_t i = 0; i < mine.confusion.size(); ++i) sums[2 + i] = double(mine.confusion[i]);
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

}  // namespace

EvalResult evaluate(Model& model, const ShardData& data, const std::vector<int64_t>& indices,
                    int64_t batch, Communicator& comm, std::vector<int32_t>* predictions,
                    std::vector<float>* probabilities, Tta tta, EvalBatches* batches) {
  const int64_t classes = model.num_classes();
  DPT_CHECK(data.classes <= classes, "the data has " << data.classes
                                                     << " classes but the model "
                                                        "outputs "
                                                     << classes);
  EvalSums sums;
  sums.confusion.assign(size_t(classes * classes), 0);
  const int64_t n = int64_t(indices.size());
  if (n > 0) {
    const int64_t steps = (n + batch - 1) / batch;
    std::unique_ptr<EvalBatches> own;
    if (!batches)
      batches = (own = std::make_unique<EvalBatches>(data, batch, model.device(), tta)).get();
    DPT_ASSERT(batches->tta() == tta);
    auto& views = batches->views();
    for (auto& v : views) v.source->start(indices, batch, 0, steps, v.aug, 0, 0, 0);
    Tensor buffer({batch, classes});
    std::vector<double> mean(size_t(batch * classes));
    for (int64_t s = 0; s < steps; ++s)
      evaluate_batch(model, views, classes, buffer, mean, sums, predictions, probabilities);
    for (auto& v : views) v.source->stop();
  }
  return reduce(sums, n, classes, comm);
}

}  // namespace dpt
