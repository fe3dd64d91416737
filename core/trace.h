// The per-rank timeline of train.trace: spans (Chrome trace "complete" events), off by default.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace dpt::trace {

// Note [trace]: while a window of train.trace is open, code wrapped in a Span is recorded with
// its start and duration (steady clock, microseconds). Off, a Span costs one relaxed atomic
// load and records nothing (docs/RESULTS.md has the overhead, measured). Spans on one lane
// nest; lanes overlap each other: the compute thread, the prefetch thread, and one lane per
// gradient bucket (kBucket + its index: buckets in flight overlap one another). Rank 0 merges
// every rank's events (trainer/trace_window.h).
enum Lane : int { kCompute = 0, kPrefetch = 1, kBucket = 10 };

struct Event {
  std::string name;
  const char* category;
  int lane;
  int64_t start_us, duration_us;
};

extern std::atomic<bool> g_on;
inline bool on() { return g_on.load(std::memory_order_relaxed); }
void set_on(bool on);
int64_t now_us();
// Thread-safe (the prefetch thread records too).
void record(const char* category, std::string name, int lane, int64_t start_us, int64_t end_us);
// This rank's events so far, handed over and forgotten.
std::vector<Event> take();

// Records [construction, destruction) when tracing is on at construction.
class Span {
 public:
  Span(const char* category, const std::string& name, int lane = kCompute)
      : category_(category), lane_(lane) {
    if (on()) {
      name_ = name;
      start_ = now_us();
    }
  }
  // A literal name: no string is built unless tracing is on.
  Span(const char* category, const char* name, int lane = kCompute)
      : category_(category), lane_(lane) {
    if (on()) {
      name_ = name;
      start_ = now_us();
    }
  }
  // name + suffix, joined only when tracing is on (no string is built per call when off).
  Span(const char* category, const std::string& name, const char* suffix, int lane = kCompute)
      : category_(category), lane_(lane) {
    if (on()) {
      name_ = name + suffix;
      start_ = now_us();
    }
  }
  ~Span() {
    if (start_ >= 0) record(category_, std::move(name_), lane_, start_, now_us());
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  const char* category_;
  int lane_;
  std::string name_;
  int64_t start_ = -1;
};

}  // namespace dpt::trace
