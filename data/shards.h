// HDF5 shard files: names, writing (prepare) and loading with validation (train/eval).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <hdf5.h>

#include "data/raw_readers.h"

namespace dpt {

// 1: the first layout. 2: images and labels checksummed (Fletcher32) in the HDF5 1.10 format
// (Note [checksums] in data/hdf5_util.h). Both are read.
constexpr int64_t kShardFormatVersion = 2;

std::string train_shard_name(const std::string& dataset, int64_t shard, int64_t num_shards);
std::string test_file_name(const std::string& dataset);

// Writes num_shards train shards from a seeded global shuffle (shard s holds positions
// [s*n/N, (s+1)*n/N) of the shuffled order) and one test file.
// The new files are written into a staging folder beside out_dir and put in place by one
// folder exchange (Note [prepare swap] in data/dataset_swap.h): a prepare that is killed or
// fails (a full disk) leaves the previous dataset intact, and files in out_dir that are not
// the previous dataset's stay.
std::vector<std::string> write_shards(const RawDataset& raw, const std::string& out_dir,
                                      int64_t num_shards, uint64_t seed);

// The id a prepare records in each file it writes (a mix of two prepares is refused); "" for
// files of prepares before ids.
std::string prepare_id_of(hid_t file, const std::string& path);

// Samples of one or more shard files, in memory as stored (uint8 NHWC, uint8 labels).
struct ShardData {
  std::string dataset;
  int64_t height = 0, width = 0, channels = 0, classes = 0;
  int64_t n = 0;
  std::vector<uint8_t> images;
  std::vector<uint8_t> labels;
  std::vector<std::string> unchecked_files;  // format 1: no checksums to verify
  std::string prepare_id;                    // of every file (they must agree)
  int64_t sample_bytes() const { return height * width * channels; }
};

// All train shards of `dataset` in dir, sorted by index; refuses a missing shard (naming it)
// or shards of two different prepares.
std::vector<std::string> find_train_shards(const std::string& dir, const std::string& dataset);

// Loads and concatenates files, checking each one's layout, attributes, label range and (in
// format 2) checksums; an empty file is refused.
// max_samples > 0 keeps only the first max_samples of each file (quick runs, tests).
ShardData load_shards(const std::vector<std::string>& files, const std::string& dataset,
                      int64_t max_samples = 0);

}  // namespace dpt
