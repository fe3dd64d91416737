// DataPlan: which shards and samples each rank owns, the train/validation split and steps per
// epoch.
#pragma once
#include <string>
#include <vector>

#include "data/shards.h"
#include "trainer/config.h"

namespace dpt {

// Note [sharding rule]: shard s belongs to rank s mod W. Within each shard the last
// floor(n * validation_split) samples are validation (Keras takes the tail too). Every rank
// reads the sample counts of all shards from their attributes, so every rank computes the
// same steps per epoch: ceil(max over ranks of its train samples / local batch). A rank whose
// samples run out earlier takes part in the remaining all-reduces with a zero gradient, so all
// samples are seen once per epoch and no rank waits for a collective another skips.
// Note [uneven batches]: the global batch B is split as evenly as the world size W allows:
// rank r takes B/W samples, plus one if r < B%W (128 on 3 ranks: 43/43/42). The loss is
// scaled by the global count of the step, so the update is the mean over the global batch
// whatever the split (train_step.h).
class DataPlan {
 public:
  DataPlan(const DataConfig& cfg, int64_t global_batch, int rank, int world);

  const ShardData& train_data() const { return train_; }
  const std::vector<int64_t>& train_indices() const { return train_idx_; }  // into train_data
  const std::vector<int64_t>& val_indices() const { return val_idx_; }
  int64_t local_batch() const { return batch_of(rank_); }  // this rank's share of the batch
  int64_t batch_of(int rank) const;
  int64_t steps_per_epoch() const { return steps_; }
  // Samples rank r contributes at step s of an epoch, and the global total.
  int64_t count_at(int rank, int64_t step) const;
  int64_t global_count_at(int64_t step) const;
  int64_t global_train_samples() const;
  int64_t global_val_samples() const;
  const std::string& prepare_id() const { return prepare_id_; }
  // What every rank must agree on: the shard names, the per-rank counts and steps per epoch.
  std::string manifest() const;
  // Shards of format 1 (written before checksums): they load, with a warning.
  const std::vector<std::string>& unchecked_files() const { return unchecked_files_; }

 private:
  int rank_, world_;
  int64_t global_batch_ = 0, steps_ = 0;
  std::vector<std::string> all_files_, my_files_, unchecked_files_;
  std::string prepare_id_;  // of every shard ("" for shards of older prepares)
  std::vector<int64_t> train_per_rank_, val_per_rank_;
  ShardData train_;
  std::vector<int64_t> train_idx_, val_idx_;
};

// The test file's slice for this rank: samples [r*n/W, (r+1)*n/W).
ShardData load_test_slice(const DataConfig& cfg, int rank, int world, std::vector<int64_t>* idx);

}  // namespace dpt
