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
enum Lane : int { kCompute = 0, kPrefetch = 1, kDevice = 2, kBucket = 10 };

struct Event {
  std::string name;
  const char* category;
  int lane;
  int64_t start_us, duration_us;
  int mark = -1;  // a DeviceTimer's mark, until take() turns it into device times
  int64_t launched_us = -1;  // device spans: when the host launched them (their step's clock)
};

// Note [device spans]: on a GPU the host's clock times kernel launches, not kernels. The CUDA
// backend installs a DeviceTimer: a span of device work (device_timed: a layer's forward or
// backward, its primitives, the loss, the optimizer) is then marked by CUDA events on the
// compute stream and opened as an NVTX range (what nsys shows), and goes to lane kDevice;
// take() waits for the device and puts the events' times on now_us()'s clock. Waits (for a
// batch, for gradients), steps, checkpoints and validation stay host-timed on their lanes.
class DeviceTimer {
 public:
  virtual ~DeviceTimer() = default;
  virtual int begin(const char* name) = 0;  // a mark id; opens the NVTX range
  virtual void end(int mark) noexcept = 0;  // closes it (from a destructor: never throws)
  // Every mark's [start, end) in microseconds of now_us(), by id, after waiting for the
  // device; forgets the marks. A mark still open (never the case between steps) is skipped.
  virtual std::vector<std::pair<int64_t, int64_t>> resolve() = 0;
};
void set_device_timer(DeviceTimer* timer);  // null: host timing only (the CPU)
DeviceTimer* device_timer();
bool device_timed(const char* category);

extern std::atomic<bool> g_on;
inline bool on() { return g_on.load(std::memory_order_relaxed); }
void set_on(bool on);
int64_t now_us();
// Thread-safe (the prefetch thread records too).
void record(const char* category, std::string name, int lane, int64_t start_us, int64_t end_us,
            int mark = -1);
// This rank's events so far, handed over and forgotten.
std::vector<Event> take();

// Records [construction, destruction) when tracing is on at construction.
class Span {
 public:
  Span(const char* category, const std::string& name, int lane = kCompute)
      : category_(category), lane_(lane) {
    if (on()) {
      name_ = name;
      begin();
    }
  }
  // A literal name: no string is built unless tracing is on.
  Span(const char* category, const char* name, int lane = kCompute)
      : category_(category), lane_(lane) {
    if (on()) {
      name_ = name;
      begin();
    }
  }
  // name + suffix, joined only when tracing is on (no string is built per call when off).
  Span(const char* category, const std::string& name, const char* suffix, int lane = kCompute)
      : category_(category), lane_(lane) {
    if (on()) {
      name_ = name + suffix;
      begin();
    }
  }
  ~Span() {
    if (start_ < 0) return;
    if (mark_ >= 0) device_timer()->end(mark_);
    record(category_, std::move(name_), mark_ >= 0 ? kDevice : lane_, start_, now_us(), mark_);
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  void begin() {
    start_ = now_us();
    if (DeviceTimer* t = device_timer(); t && device_timed(category_)) mark_ = t->begin(name_.c_str());
  }
  const char* category_;
  int lane_;
  std::string name_;
  int64_t start_ = -1;
  int mark_ = -1;
};

}  // namespace dpt::trace
