// Note [device spans]: with a DeviceTimer installed, spans of device work get its marks, move to
// the device lane and take the timer's times; waits and steps stay on the host's clock.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/trace.h"

namespace dpt::testing {
namespace {

// A timer whose device runs kLag behind the host and takes 7 us per mark: what the CUDA backend's
// events would report for work queued behind the host (the lag, far beyond any scheduling
// delay, tells the two clocks apart).
constexpr int64_t kLag = 1000000000;
class LaggingTimer : public trace::DeviceTimer {
 public:
  int begin(const char* name) override {
    names.push_back(name);
    open.push_back(int(marks.size()));
    marks.push_back({trace::now_us() + kLag, -1});
    return int(marks.size()) - 1;
  }
  void end(int mark) noexcept override {
    marks[size_t(mark)].second = marks[size_t(mark)].first + 7;
    ended.push_back(mark);
  }
  std::vector<std::pair<int64_t, int64_t>> resolve() override {
    ++resolved;
    auto out = marks;
    marks.clear();
    return out;
  }
  std::vector<std::string> names;
  std::vector<int> open, ended;
  std::vector<std::pair<int64_t, int64_t>> marks;
  int resolved = 0;
};

TEST(TraceDeviceSpans, DeviceWorkTakesTheTimersTimesOnTheDeviceLane) {
  LaggingTimer timer;
  trace::set_device_timer(&timer);
  trace::set_on(true);
  const int64_t before = trace::now_us();
  {
    trace::Span step("step", "step 1");
    {
      trace::Span fwd("forward", std::string("conv2d"));
      trace::Span prim("primitive", std::string("conv2d"), ": data");
    }
    trace::Span wait("all-reduce", "wait for gradients");
  }
  trace::set_on(false);
  const auto events = trace::take();
  trace::set_device_timer(nullptr);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(timer.names, (std::vector<std::string>{"conv2d", "conv2d: data"}));
  EXPECT_EQ(timer.ended, (std::vector<int>{1, 0})) << "marks close innermost first";
  EXPECT_EQ(timer.resolved, 1);
  for (const auto& e : events) {
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.mark, -1) << "take() hands out times, not marks";
    const bool device = e.name == "conv2d" || e.name == "conv2d: data";
    EXPECT_EQ(e.lane, device ? trace::kDevice : trace::kCompute);
    if (device) {
      EXPECT_GE(e.start_us, before + kLag);
      EXPECT_EQ(e.duration_us, 7);
      EXPECT_GE(e.launched_us, before) << "the host's launch time is kept";
      EXPECT_LT(e.launched_us, before + kLag);
    } else {
      EXPECT_LT(e.start_us, before + kLag);  // the host's clock, not the device's
      EXPECT_EQ(e.launched_us, -1);
    }
  }
}

TEST(TraceDeviceSpans, WithoutATimerEverySpanIsHostTimed) {
  trace::set_device_timer(nullptr);
  trace::set_on(true);
  { trace::Span fwd("forward", std::string("dense")); }
  trace::set_on(false);
  const auto events = trace::take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].lane, trace::kCompute);
  EXPECT_EQ(events[0].mark, -1);
}

TEST(TraceDeviceSpans, OffNoMarkIsTaken) {
  LaggingTimer timer;
  trace::set_device_timer(&timer);
  { trace::Span fwd("forward", std::string("dense")); }
  trace::set_device_timer(nullptr);
  EXPECT_TRUE(timer.names.empty());
  EXPECT_TRUE(trace::take().empty());
}

}  // namespace
}  // namespace dpt::testing
