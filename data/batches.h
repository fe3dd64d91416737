// Batch assembly (normalise, augment) and the Prefetcher that builds batches on a background
// thread.
#pragma once
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/shards.h"

namespace dpt {

struct Batch {
  Tensor storage;          // host: capacity x H x W x C, allocated once
  Tensor x;                // (n, H, W, C), float in [0, 1], where the model lives
  std::vector<int32_t> y;  // the labels on the host (capacity may be larger)
  int64_t n = 0;
  const int32_t* device_labels = nullptr;  // set by DeviceBatch when x is on a GPU
  // The n labels where x lives: what the loss reads.
  const int32_t* labels() const { return device_labels ? device_labels : y.data(); }
};

struct AugmentSpec {
  int64_t crop_pad = 0;              // pad with zeros by this much, crop back at a random offset
  bool flip = false;                 // horizontal flip with probability 1/2
  bool mirror = false;               // flip every image (test-time augmentation)
  int64_t shift_y = 0, shift_x = 0;  // move every image by this (test-time augmentation)
  // What comes in at the edges of a crop or shift: zeros, or the image mirrored at its border
  // (PyTorch's 'reflect' padding: -1 reads 1), so no artificial black edge is made; a
  // whitening first layer (models/whitening.h) would amplify such an edge.
  bool reflect = false;
  bool any() const { return crop_pad > 0 || flip || mirror || shift_y != 0 || shift_x != 0; }
};

// Random choices per sample come from Philox(seed, rank; counter = (sample position in the
// epoch, epoch, augment stream)): reproducible after a resume, independent across ranks.
void fill_batch(const ShardData& data, const int64_t* indices, int64_t n, const AugmentSpec& aug,
                uint64_t seed, uint32_t rank, uint64_t epoch, int64_t first_position, Batch& out);

// The order of a rank's samples in one epoch: a Philox Fisher-Yates shuffle of 0..n-1.
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, uint32_t rank,
                                 uint64_t epoch);

// Produces the batches of one pass over `order` ahead of the training loop, into `depth`
// preallocated slots, so that decoding and augmentation overlap with compute.
class Prefetcher {
 public:
  Prefetcher(const ShardData& data, int64_t batch_capacity, int depth);
  ~Prefetcher() { stop(); }
  Prefetcher(const Prefetcher&) = delete;

  // Batch s holds order[s*batch .. min((s+1)*batch, end)); produces steps [first, last).
  void start(std::vector<int64_t> order, int64_t batch, int64_t first_step, int64_t last_step,
             AugmentSpec aug, uint64_t seed, uint32_t rank, uint64_t epoch);
  // The next batch; valid until the following call. Rethrows an error from the thread.
  const Batch& next();
  void stop();

 private:
  void run();

  const ShardData& data_;
  std::vector<Batch> slots_;
  std::vector<int64_t> order_;
  int64_t batch_ = 0, first_ = 0, last_ = 0;
  AugmentSpec aug_;
  uint64_t seed_ = 0, epoch_ = 0;
  uint32_t rank_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  int64_t produced_ = 0, consumed_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace dpt
