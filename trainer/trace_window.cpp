// The trace window and the merge: clock offsets from a barrier, events gathered to rank 0.
#include "trainer/trace_window.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "comm/agree.h"
#include "core/files.h"
#include "core/trace.h"
#include "trainer/log.h"

namespace dpt {

void TraceWindow::before_step(int64_t n) {
  if (done_ || open_ || n < from_ || n > to_) return;
  open_ = true;
  trace::set_on(true);
}

void TraceWindow::after_step(Communicator& comm, int64_t n) {
  if (open_ && n >= to_) write(comm);
}

void TraceWindow::close(Communicator& comm) {
  if (open_) write(comm);
}

namespace {
std::string lane_name(int lane) {
  if (lane == trace::kCompute) return "compute";
  if (lane == trace::kPrefetch) return "prefetch";
  if (lane == trace::kDevice) return "GPU compute stream";
  return "all-reduce bucket " + std::to_string(lane - trace::kBucket);
}
}  // namespace

void TraceWindow::write(Communicator& comm) {
  trace::set_on(false);
  open_ = false;
  done_ = true;
  std::vector<trace::Event> mine = trace::take();
  // Clocks: right after a barrier every rank reads its steady clock, and shifts its events by
  // the difference to rank 0's reading. The error is the skew of the barrier's exit:
  // microseconds on one host, tens of microseconds across nodes.
  // Two barriers: ranks arrive at different times and one that waited long polls slowly; by
  // the second every rank is polling at full speed.
  comm.barrier();
  comm.barrier();
  const int64_t here = trace::now_us();
  int64_t first = here;
  for (const trace::Event& e : mine) first = std::min(first, e.start_us);
  int64_t root[2] = {here, first};
  comm.broadcast(root, sizeof root, 0);
  // Times start 1 s before rank 0's first span, so that no rank's shifted time is negative.
  const int64_t base = root[1] - 1000000, shift = root[0] - here;
  const int rank = comm.rank();
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", rank}, {"tid", 0},
                    {"args", {{"name", "rank " + std::to_string(rank) + " (" +
                                           comm.host_of(rank) + ")"}}}});
  events.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", rank}, {"tid", 0},
                    {"args", {{"sort_index", rank}}}});
  std::set<int> lanes{trace::kCompute, trace::kPrefetch};
  for (const trace::Event& e : mine) lanes.insert(e.lane);
  for (int lane : lanes)
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", rank}, {"tid", lane},
                      {"args", {{"name", lane_name(lane)}}}});
  for (const trace::Event& e : mine) {
    nlohmann::json x = {{"name", e.name},         {"cat", e.category},
                        {"ph", "X"},              {"ts", e.start_us + shift - base},
                        {"dur", e.duration_us},   {"pid", rank},
                        {"tid", e.lane}};
    // Device spans (Note [device spans]) keep when the host launched them: their step.
    if (e.launched_us >= 0) x["args"] = {{"launched", e.launched_us + shift - base}};
    events.push_back(std::move(x));
  }
  const std::string text = events.dump();
  // Every rank's part to rank 0: one broadcast per rank (the communicator has no gather; this
  // runs once per run).
  nlohmann::json all = nlohmann::json::array();
  for (int r = 0; r < comm.size(); ++r) {
    uint64_t len = text.size();
    comm.broadcast(&len, sizeof len, r);
    std::string part(len, '\0');
    if (r == rank) part = text;
    if (len > 0) comm.broadcast(part.data(), len, r);
    if (rank == 0)
      for (auto& e : nlohmann::json::parse(part)) all.push_back(std::move(e));
  }
  // The steps actually recorded (a resume or an early end can cut the window).
  int64_t lo = 0, hi = 0;
  for (const auto& e : all)
    if (e.value("cat", "") == "step") {
      const int64_t n = std::stoll(e["name"].get<std::string>().substr(5));  // "step N"
      lo = lo == 0 ? n : std::min(lo, n);
      hi = std::max(hi, n);
    }
  agree(comm, [&] {
    if (rank != 0) return;
    write_merged(all, lo, hi, comm.size());
  });
}

void TraceWindow::write_merged(nlohmann::json& all, int64_t lo, int64_t hi, int ranks) {
  const nlohmann::json doc = {
      {"traceEvents", std::move(all)},
      {"displayTimeUnit", "ms"},
      {"otherData",
       {{"producer", "dptrain train.trace"},
        {"steps", {lo, hi}},
        {"ranks", ranks},
        {"clock", "steady clock per rank, shifted to rank 0's at a barrier; microseconds"}}}};
  write_file_atomically(path_, doc.dump() + "\n");
  if (!announce_) return;
  if (hi == 0)
    log::info("Trace: no step of train.trace's window " + std::to_string(from_) + "-" +
              std::to_string(to_) + " ran; " + path_ + " holds no steps");
  else
    log::info("Trace: steps " + std::to_string(lo) + "-" + std::to_string(hi) + " of " +
              std::to_string(ranks) + " rank(s) in " + path_ +
              " (open it in ui.perfetto.dev or chrome://tracing)");
}

}  // namespace dpt
