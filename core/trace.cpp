// The trace recorder: one process-wide event list behind a mutex (Note [trace] in trace.h).
#include "core/trace.h"

#include <chrono>
#include <mutex>

namespace dpt::trace {

std::atomic<bool> g_on{false};

namespace {
std::mutex g_mu;
std::vector<Event> g_events;
}  // namespace

void set_on(bool on) { g_on.store(on, std::memory_order_relaxed); }

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void record(const char* category, std::string name, int lane, int64_t start_us, int64_t end_us) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_events.push_back(Event{std::move(name), category, lane, start_us, end_us - start_us});
}

std::vector<Event> take() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<Event> out;
  out.swap(g_events);
  return out;
}

}  // namespace dpt::trace
