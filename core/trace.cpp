// The trace recorder: one process-wide event list behind a mutex (Note [trace] in trace.h).
#include "core/trace.h"

#include <chrono>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace dpt::trace {

std::atomic<bool> g_on{false};

namespace {
std::mutex g_mu;
std::vector<Event> g_events;
DeviceTimer* g_timer = nullptr;
}  // namespace

void set_device_timer(DeviceTimer* timer) { g_timer = timer; }
DeviceTimer* device_timer() { return g_timer; }

bool device_timed(const char* category) {
  for (const char* c : {"forward", "backward", "primitive", "loss", "optimizer"})
    if (std::strcmp(category, c) == 0) return true;
  return false;
}

void set_on(bool on) { g_on.store(on, std::memory_order_relaxed); }

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void record(const char* category, std::string name, int lane, int64_t start_us, int64_t end_us,
            int mark) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_events.push_back(Event{std::move(name), category, lane, start_us, end_us - start_us, mark});
}

std::vector<Event> take() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<Event> out;
  out.swap(g_events);
  bool marked = false;
  for (const Event& e : out) marked |= e.mark >= 0;
  if (!marked) return out;
  const auto times = g_timer->resolve();
  for (Event& e : out) {
    if (e.mark < 0) continue;
    DPT_CHECK(size_t(e.mark) < times.size(), "trace: device mark " << e.mark << " of '" << e.name
                                                                   << "' was never resolved");
    e.launched_us = e.start_us;
    e.start_us = times[size_t(e.mark)].first;
    e.duration_us = times[size_t(e.mark)].second - e.start_us;
    e.mark = -1;
  }
  return out;
}

}  // namespace dpt::trace
