// The run directory: resolved config.yaml, metrics.csv rows and the final summary.yaml (rank 0).
#pragma once
#include <fstream>
#include <string>

namespace dpt {

void make_directories(const std::string& dir);

struct MetricsRow {
  std::string epoch;  // 1-based epoch
  int64_t step = 0;   // global step at the end of the interval
  double loss = 0, accuracy = 0;
  double val_loss = -1, val_accuracy = -1;  // -1: not evaluated in this row
  double lr = 0, images_per_sec = 0, allreduce_sec = 0, elapsed_sec = 0;
};

class MetricsCsv {
 public:
  explicit MetricsCsv(const std::string& path);  // writes the header if the file is new
  void write(const MetricsRow& r);

 private:
  std::ofstream out_;
};

}  // namespace dpt
