// Exact evaluation over a rank's samples with one all-reduce of sums and the confusion matrix.
#include "trainer/evaluator.h"

#include <algorithm>

#include "data/batches.h"
#include "trainer/device_batch.h"
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
                    int64_t batch, Communicator& comm, std::vector<int32_t>* predictions) {
  const int64_t classes = model.num_classes();
  DPT_CHECK(data.classes <= classes, "the data has " << data.classes << " classes but the model "
                                      "outputs " << classes);
  std::vector<double> sums(size_t(2 + classes * classes), 0.0);  // loss, correct, confusion
  const int64_t n = int64_t(indices.size());
  if (n > 0) {
    Prefetcher pf(data, batch, 2);
#ifdef DPT_WITH_CUDA
    std::unique_ptr<DeviceBatch> device_batch;
    Tensor host_logits;
    if (model.device() == Device::kCuda) {
      device_batch = std::make_unique<DeviceBatch>(batch, model.input_shape());
      host_logits = Tensor({batch, classes});
    }
#endif
    const int64_t steps = (n + batch - 1) / batch;
    pf.start(indices, batch, 0, steps, AugmentSpec{}, 0, 0, 0);
    std::vector<int64_t> confusion(size_t(classes * classes), 0);
    StepContext ctx;
    ctx.mode = Mode::kInfer;
    Tensor host_logits_view;
    for (int64_t s = 0; s < steps; ++s) {
      const Batch& b = pf.next();
      const Batch* in = &b;
#ifdef DPT_WITH_CUDA
      if (device_batch) in = &device_batch->upload(b);
#endif
      const Tensor* out = &model.forward(in->x, ctx);
      const LossStats st = SoftmaxCrossEntropy::compute(*out, in->labels(), nullptr, 1.0f);
#ifdef DPT_WITH_CUDA
      if (device_batch) {  // the confusion matrix and predictions are counted on the host
        copy_memory(host_logits.data(), false, out->data(), true, size_t(out->size()) * sizeof(float));
        host_logits_view = Tensor::view(host_logits.data(), out->shape());
        out = &host_logits_view;
      }
#endif
      const Tensor& logits = *out;
      sums[0] += st.loss_sum;
      sums[1] += double(st.correct);
      SoftmaxCrossEntropy::confusion(logits, b.y.data(), confusion.data());
      if (predictions)
        for (int64_t i = 0; i < b.n; ++i) {
          const float* row = logits.data() + i * classes;
          predictions->push_back(int32_t(std::max_element(row, row + classes) - row));
        }
    }
    for (size_t i = 0; i < confusion.size(); ++i) sums[2 + i] = double(confusion[i]);
  }
  double count = double(n);
  comm.allreduce_sum_f64(sums.data(), sums.size());
  comm.allreduce_sum_f64(&count, 1);
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
