// GradientReducer: bucket assignment in reverse parameter order and in-order launches.
#include "comm/gradient_reducer.h"

#include <algorithm>
#include <chrono>

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
  next_ = 0;
}

void GradientReducer::launch(size_t b) {
  pending_.push_back(comm_.allreduce_sum(grads_ + buckets_[b].offset, size_t(buckets_[b].size)));
}

void GradientReducer::on_layer_done(int layer) {
  if (!overlap_ || comm_.size() == 1) return;
  while (next_ < buckets_.size() && buckets_[next_].ready_layer >= layer) launch(next_++);
  // MPI moves non-blocking collectives forward only inside MPI calls: poke them.
  for (auto& w : pending_) w->test();
}

double GradientReducer::finish_step() {
  if (comm_.size() == 1) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  while (next_ < buckets_.size()) launch(next_++);
  for (auto& w : pending_) w->wait();
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& w : previous_) waited += std::max(0.0, w->device_wait_seconds());
  previous_ = std::move(pending_);  // kept until their device events can be read
  pending_.clear();
  return waited;
}

}  // namespace dpt
