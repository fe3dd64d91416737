// Readers for the official raw dataset formats: IDX (.gz or plain) and the CIFAR-10 binary version.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dpt {

struct RawSplit {
  int64_t n = 0;
  std::vector<uint8_t> images;  // n x H x W x C, HWC order
  std::vector<uint8_t> labels;  // n
};

struct RawDataset {
  std::string name;  // mnist | fashion-mnist | cifar10
  int64_t height = 0, width = 0, channels = 0, classes = 0;
  RawSplit train, test;
  std::vector<std::string> class_names;
  std::string source_md5;  // "file=md5;file=md5" of the decompressed raw files
};

// Reads dir/<official names>; verify=true compares each file's MD5 with the known table
// (data/checksums.cpp) and refuses a mismatch. Headers, sizes and label ranges are always
// checked. Errors name the file and say what to do.
RawDataset read_raw_dataset(const std::string& name, const std::string& dir, bool verify);

// Lower-level pieces, exposed for tests.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);  // transparently gunzips
RawSplit parse_idx_pair(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels,
                        const std::string& images_name, const std::string& labels_name,
                        int64_t classes);

}  // namespace dpt
