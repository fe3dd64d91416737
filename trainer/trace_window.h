// TraceWindow: opens and closes train.trace's window of steps and writes the merged timeline.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "comm/communicator.h"

namespace dpt {

// Note [trace] (core/trace.h): every rank records the steps [from, to] (1-based global steps,
// as in metrics.csv); after the last one (or at the end of training, or a stop, if the window
// opened) the ranks hand their events to rank 0, which writes one Chrome-trace JSON file that
// Perfetto (ui.perfetto.dev) and chrome://tracing open: a process per rank, a lane each for
// compute, the prefetch thread and every gradient bucket's all-reduce.
class TraceWindow {
 public:
  // announce: log where the trace went (dptrain profile prints its table instead).
  TraceWindow(int64_t from, int64_t to, std::string path, bool announce = true)
      : from_(from), to_(to), path_(std::move(path)), announce_(announce) {}
  void before_step(int64_t n);
  // Collective: every rank calls it after every step n.
  void after_step(Communicator& comm, int64_t n);
  // Collective: at the end of training or on a stop; writes what was recorded, if anything.
  void close(Communicator& comm);
  bool written() const { return done_; }

 private:
  void write(Communicator& comm);
  void write_merged(nlohmann::json& all, int64_t lo, int64_t hi, int ranks);  // rank 0
  int64_t from_, to_;
  std::string path_;
  bool announce_, open_ = false, done_ = false;
};

}  // namespace dpt
