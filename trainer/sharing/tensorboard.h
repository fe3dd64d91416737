// TensorBoardWriter: rank 0's TensorBoard event files, with the tags of Keras' TensorBoard
// callback.
#pragma once
#include <memory>
#include <string>

#include "trainer/sharing/metrics_row.h"

namespace dpt {

// Writes <dir>/train/events.out.tfevents.<time>.<host>.<pid> (and validation/ once there is a
// validation row), as Keras does: per logging interval batch_loss, batch_accuracy,
// learning_rate, images_per_sec and allreduce_sec at the global step; per epoch epoch_loss,
// epoch_accuracy and epoch_learning_rate (validation/: epoch_loss, epoch_accuracy) at the epoch
// number; test_accuracy and test_loss at the last epoch; the resolved config as a text summary
// (tag "config"). Every record is flushed as it is written; a failed write is an error.
//
// Note [events after a resume]: each process writes a new file. keep_through_step >= 0 (a
// resumed run, as MetricsCsv takes it): records that the interrupted run wrote after its
// checkpoint (global step > keep_through_step, or epoch > keep_through_epoch for the per-epoch
// and test tags) are dropped from the earlier files, and this run writes only later steps, so
// no tag has a step twice. The config is written at step 0 by a fresh run and at
// keep_through_step + 1 (the first step it trains) by a resumed one.
class TensorBoardWriter {
 public:
  TensorBoardWriter(const std::string& dir, int64_t keep_through_step, int64_t keep_through_epoch,
                    const std::string& config_yaml);
  ~TensorBoardWriter();
  void write_interval(const MetricsRow& row);  // a metrics.csv interval row
  void write_epoch(const MetricsRow& row);     // a metrics.csv epoch row (row.epoch: 1-based)
  void write_test(double accuracy, double loss, int64_t epochs_done);

  class EventFile;  // one events.out.tfevents.* file: tensorboard.cpp

 private:
  std::string dir_;
  int64_t keep_step_, keep_epoch_;
  std::unique_ptr<EventFile> train_, validation_;
};

// Masked CRC32C of TFRecord framing (exposed for the tests).
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace dpt
