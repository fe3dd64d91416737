// Shared state and helpers of the MPI tests: the communicator and a synthetic learnable dataset.
#pragma once
#include <string>

#include "comm/communicator.h"
#include "core/philox.h"
#include "data/raw_readers.h"

namespace dpt::testing {

extern Communicator* g_comm;

// n images of 8x8x1 whose label (0..2) is the brightest third of the image: easy to learn.
inline RawDataset synthetic_dataset(int64_t n_train, int64_t n_test, uint64_t seed) {
  RawDataset d;
  d.name = "mnist";
  d.height = d.width = 8;
  d.channels = 1;
  d.classes = 3;
  d.class_names = {"a", "b", "c"};
  PhiloxStream rng(seed, 0, 0, 77);
  for (auto [split, n] : {std::pair{&d.train, n_train}, {&d.test, n_test}}) {
    split->n = n;
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t label = uint8_t(rng.below(3));
      split->labels.push_back(label);
      for (int p = 0; p < 64; ++p) {
        const bool bright = (p % 8) / 3 == label || ((p % 8) == 7 && label == 2);
        split->images.push_back(uint8_t(rng.below(60) + (bright ? 150 : 0)));
      }
    }
  }
  return d;
}

// A directory every rank agrees on: rank 0 creates it and broadcasts the name, and removes it
// (after a barrier) when it goes out of scope.
class SharedTempDir {
 public:
  explicit SharedTempDir(const std::string& tag);
  ~SharedTempDir();
  SharedTempDir(const SharedTempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace dpt::testing
