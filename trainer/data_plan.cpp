// DataPlan: shard-to-rank assignment, per-shard validation tail, and identical step counts on all
// ranks.
#include "trainer/data_plan.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/hdf5_util.h"

namespace dpt {

DataPlan::DataPlan(const DataConfig& cfg, int64_t global_batch, int rank, int world)
    : rank_(rank), world_(world), global_batch_(global_batch) {
  DPT_CHECK(global_batch >= world, "train.batch_size "
                                       << global_batch << " is the global batch, smaller than the "
                                       << world
                                       << " ranks: every rank needs at least one sample per "
                                          "step; use a batch_size of at least "
                                       << world);
  all_files_ = find_train_shards(cfg.dir, cfg.dataset);
  const int64_t shards = int64_t(all_files_.size());
  DPT_CHECK(shards >= world, cfg.dir << " holds " << shards << " train shards, fewer than the "
                                     << world << " ranks; re-run dptrain prepare with --shards "
                                     << world << " (or a multiple of it)");
  train_per_rank_.assign(size_t(world), 0);
  val_per_rank_.assign(size_t(world), 0);
  for (int64_t s = 0; s < shards; ++s) {
    h5::Handle f = h5::open_file(all_files_[size_t(s)]);
    int64_t n = h5::get_attr_int(f, "num_samples", all_files_[size_t(s)]);
    const std::string id = prepare_id_of(f, all_files_[size_t(s)]);
    if (s == 0) prepare_id_ = id;
    DPT_CHECK(id == prepare_id_, "the train shards in '"
                                     << cfg.dir << "' come from two different prepares: '"
                                     << all_files_[0] << "' has prepare_id '" << prepare_id_
                                     << "', '" << all_files_[size_t(s)] << "' has '" << id
                                     << "'; re-run dptrain prepare into an empty --out");
    if (h5::has_attr(f, "format_version") &&
        h5::get_attr_int(f, "format_version", all_files_[size_t(s)]) < 2)
      unchecked_files_.push_back(all_files_[size_t(s)]);
    if (cfg.max_train_samples > 0) n = std::min(n, cfg.max_train_samples);
    const int64_t val = int64_t(std::floor(double(n) * cfg.validation_split));
    train_per_rank_[size_t(s % world)] += n - val;
    val_per_rank_[size_t(s % world)] += val;
    if (s % world == rank) my_files_.push_back(all_files_[size_t(s)]);
  }
  for (int r = 0; r < world; ++r)
    steps_ = std::max(steps_, (train_per_rank_[size_t(r)] + batch_of(r) - 1) / batch_of(r));
  DPT_CHECK(steps_ > 0, "no training samples in " << cfg.dir);

  train_ = load_shards(my_files_, cfg.dataset, cfg.max_train_samples);
  // Rebuild each shard's boundaries from the per-file counts to split off the validation tail.
  int64_t offset = 0;
  for (const auto& path : my_files_) {
    h5::Handle f = h5::open_file(path);
    int64_t n = h5::get_attr_int(f, "num_samples", path);
    if (cfg.max_train_samples > 0) n = std::min(n, cfg.max_train_samples);
    const int64_t val = int64_t(std::floor(double(n) * cfg.validation_split));
    for (int64_t i = 0; i < n; ++i) (i < n - val ? train_idx_ : val_idx_).push_back(offset + i);
    offset += n;
  }
  DPT_ASSERT(int64_t(train_idx_.size()) == train_per_rank_[size_t(rank)]);
}

int64_t DataPlan::batch_of(int rank) const {
  return global_batch_ / world_ + (rank < global_batch_ % world_ ? 1 : 0);
}

int64_t DataPlan::count_at(int rank, int64_t step) const {
  const int64_t left = train_per_rank_[size_t(rank)] - step * batch_of(rank);
  return std::clamp<int64_t>(left, 0, batch_of(rank));
}

int64_t DataPlan::global_count_at(int64_t step) const {
  int64_t total = 0;
  for (int r = 0; r < world_; ++r) total += count_at(r, step);
  return total;
}

int64_t DataPlan::global_train_samples() const {
  int64_t t = 0;
  for (auto v : train_per_rank_) t += v;
  return t;
}

int64_t DataPlan::global_val_samples() const {
  int64_t t = 0;
  for (auto v : val_per_rank_) t += v;
  return t;
}

ShardData load_test_slice(const DataConfig& cfg, int rank, int world, std::vector<int64_t>* idx) {
  const std::string path = cfg.dir + "/" + test_file_name(cfg.dataset);
  ShardData d = load_shards({path}, cfg.dataset, cfg.max_test_samples);
  idx->clear();
  for (int64_t i = rank * d.n / world; i < (rank + 1) * d.n / world; ++i) idx->push_back(i);
  return d;
}

std::string DataPlan::manifest() const {
  std::string m = "steps_per_epoch: " + std::to_string(steps_) + "\n";
  for (const auto& f : all_files_) m += "shard: " + f.substr(f.rfind('/') + 1) + "\n";
  for (int r = 0; r < world_; ++r)
    m += "rank " + std::to_string(r) + ": " + std::to_string(train_per_rank_[size_t(r)]) +
         " train, " + std::to_string(val_per_rank_[size_t(r)]) + " validation samples\n";
  return m + "prepare_id: " + prepare_id_ + "\n";
}

}  // namespace dpt
