// GradientReducer: bucket assignment in reverse parameter order and in-order launches.
#include "comm/gradient_reducer.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "core/trace.h"

namespace dpt {

GradientReducer::GradientReducer(Communicator& comm, Model& model, int64_t bucket_bytes,
                                 int64_t first_bucket_bytes, bool overlap)
    : comm_(comm), model_(model), overlap_(overlap) {
  const auto& params = model.params();
  const float* base = model.grads().data();
  int64_t cap = std::max<int64_t>(first_bucket_bytes / 4, 1);
  Bucket cur;
  bool open = false;
  for (size_t k = params.size(); k-- > 0;) {
    const Param& p = params[k];
    if (!p.grad) continue;  // non-trainable state is not reduced with gradients
    const int64_t off = p.grad - base;
    if (!open) {
      cur = Bucket{off + p.size(), 0, 0};
      open = true;
    }
    cur.offset = off;
    cur.size += p.size();
    cur.ready_layer = model.param_layer(k);
    if (cur.size >= cap) {
      buckets_.push_back(cur);
      open = false;
      cap = std::max<int64_t>(bucket_bytes / 4, 1);
    }
  }
  if (open) buckets_.push_back(cur);
}

void GradientReducer::begin_step() {
  grads_ = model_.grads().data();
  pending_.clear();
  launched_us_.clear();
  next_ = 0;
}

void GradientReducer::launch(size_t b) {
  launched_us_.push_back(trace::on() ? trace::now_us() : -1);
  pending_.push_back(comm_.allreduce_sum(grads_ + buckets_[b].offset, size_t(buckets_[b].size)));
}

void GradientReducer::trace_if_done(size_t i, bool done) {
  if (!done || launched_us_[i] < 0) return;
  const Bucket& b = buckets_[i];  // pending_[i] is bucket i: both in launch order
  trace::record("all-reduce",
                "bucket " + std::to_string(i) + " (" + std::to_string(b.size * 4 / 1024) + " KiB)",
                trace::kBucket + int(i), launched_us_[i], trace::now_us());
  launched_us_[i] = -1;
}

void GradientReducer::on_layer_done(int layer) {
  if (!overlap_ || comm_.size() == 1) return;
  while (next_ < buckets_.size() && buckets_[next_].ready_layer >= layer) launch(next_++);
  // MPI moves non-blocking collectives forward only inside MPI calls: poke them.
  for (size_t i = 0; i < pending_.size(); ++i) trace_if_done(i, pending_[i]->test());
}

double GradientReducer::finish_step() {
  if (comm_.size() == 1) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  while (next_ < buckets_.size()) launch(next_++);
  {
    trace::Span span("all-reduce", "wait for gradients");
    for (size_t i = 0; i < pending_.size(); ++i) {
      pending_[i]->wait();
      trace_if_done(i, true);
    }
  }
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& w : previous_) waited += std::max(0.0, w->device_wait_seconds());
  previous_ = std::move(pending_);  // kept until their device events can be read
  pending_.clear();
  return waited;
}

}  // namespace dpt
