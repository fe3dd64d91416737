// train.trace end to end: the merged timeline of a 2-rank run is valid Chrome-trace JSON, spans
// nest per lane, every rank appears, and gradient buckets overlap backward only with overlap on
// (buckets have a lane each, tid 10 + bucket index).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "core/device_memory.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

using nlohmann::json;

class Trace : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("trace");
    const auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir_ +
                       "/data --shards 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override { remove_tree(dir_); }
  // Steps 3-6 of a 2-rank mnist_convnet run with small buckets (several per step).
  json traced(const std::string& name, bool overlap) {
    const auto r = run(kMpiEnv + "timeout 300 mpirun --oversubscribe -np 2 " + dptrain() +
                       " train " + source_dir() + "/configs/mnist_convnet.yaml --set data.dir=" +
                       dir_ + "/data --set run_dir=" + dir_ + "/" + name +
                       " --set data.max_train_samples=1000 --set data.max_test_samples=200"
                       " --set train.epochs=1 --set 'train.trace={steps: [3, 6]}'"
                       " --set train.bucket_mb=0.02 --set train.first_bucket_mb=0.02"
                       " --set train.overlap=" +
                       std::string(overlap ? "true" : "false"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Trace: steps 3-6 of 2 rank(s) in " + dir_ + "/" + name +
                            "/train.trace.json"),
              std::string::npos)
        << r.output;
    return json::parse(read_file(dir_ + "/" + name + "/train.trace.json"));
  }
  std::string dir_;
};

struct Span {
  std::string name, cat;
  double ts, end;
  int pid, tid;
};

// The JSON object format of the Trace Event Format (what chrome://tracing and Perfetto read):
// {"traceEvents": [...]}, complete events ("X": name, cat, ts, dur, pid, tid) and metadata
// events ("M": process_name / thread_name with args.name).
std::vector<Span> check_schema(const json& doc) {
  std::vector<Span> spans;
  EXPECT_TRUE(doc.is_object());
  EXPECT_EQ(doc.value("displayTimeUnit", ""), "ms");
  if (!doc.contains("traceEvents") || !doc["traceEvents"].is_array()) {
    ADD_FAILURE() << "no traceEvents array";
    return spans;
  }
  for (const json& e : doc["traceEvents"]) {
    EXPECT_TRUE(e.is_object());
    EXPECT_TRUE(e["name"].is_string()) << e;
    EXPECT_TRUE(e["pid"].is_number_integer()) << e;
    EXPECT_TRUE(e["tid"].is_number_integer()) << e;
    const std::string ph = e.value("ph", "");
    if (ph == "M") {
      EXPECT_TRUE(e["args"].is_object()) << e;
      continue;
    }
    EXPECT_EQ(ph, "X") << e;
    EXPECT_TRUE(e["cat"].is_string()) << e;
    EXPECT_TRUE(e["ts"].is_number() && e["ts"].get<double>() >= 0) << e;
    EXPECT_TRUE(e["dur"].is_number() && e["dur"].get<double>() >= 0) << e;
    const double ts = e["ts"].get<double>();
    spans.push_back({e["name"], e["cat"], ts, ts + e["dur"].get<double>(), e["pid"], e["tid"]});
  }
  return spans;
}

// On one lane of one rank, spans are disjoint or nested.
void expect_nesting(std::vector<Span> spans) {
  std::map<std::pair<int, int>, std::vector<Span>> lanes;
  for (auto& s : spans) lanes[{s.pid, s.tid}].push_back(s);
  for (auto& [lane, v] : lanes) {
    std::sort(v.begin(), v.end(), [](const Span& a, const Span& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.end > b.end;
    });
    std::vector<Span> open;
    for (const Span& s : v) {
      while (!open.empty() && open.back().end <= s.ts) open.pop_back();
      if (!open.empty()) {
        EXPECT_LE(s.end, open.back().end) << s.name << " overlaps the end of " << open.back().name
                                          << " on rank " << lane.first << " lane " << lane.second;
      }
      open.push_back(s);
    }
  }
}

int overlaps_of_buckets_with_backward(const std::vector<Span>& spans) {
  int n = 0;
  for (const Span& b : spans)
    if (b.cat == "all-reduce" && b.tid >= 10)
      for (const Span& w : spans)
        if (w.cat == "backward" && w.pid == b.pid && b.ts < w.end && w.ts < b.end) ++n;
  return n;
}

TEST_F(Trace, TwoRankTimelineIsValidNestedAndComplete) {
  const json doc = traced("on", true);
  const std::vector<Span> spans = check_schema(doc);
  expect_nesting(spans);
  std::set<int> pids;
  std::map<int, std::set<std::string>> steps, cats;
  for (const Span& s : spans) {
    pids.insert(s.pid);
    if (s.cat == "step") steps[s.pid].insert(s.name);
    cats[s.pid].insert(s.cat);
  }
  EXPECT_EQ(pids, (std::set<int>{0, 1}));
  for (int p : {0, 1}) {
    EXPECT_EQ(steps[p], (std::set<std::string>{"step 3", "step 4", "step 5", "step 6"})) << p;
    for (const char* c : {"forward", "backward", "loss", "optimizer", "all-reduce", "data"})
      EXPECT_TRUE(cats[p].count(c)) << "rank " << p << " has no '" << c << "' span";
  }
  // Every forward and backward of a step lies inside that step's span.
  for (const Span& s : spans) {
    if (s.cat != "forward" && s.cat != "backward") continue;
    bool inside = false;
    for (const Span& st : spans)
      inside |= st.cat == "step" && st.pid == s.pid && st.ts <= s.ts && s.end <= st.end;
    EXPECT_TRUE(inside) << s.name << " on rank " << s.pid;
  }
  // A convolution's backward splits into its primitives: the weight (and bias) gradient and,
  // but for the first layer, the data gradient; each inside that layer's backward.
  std::set<std::string> parts;
  for (const Span& s : spans) {
    if (s.cat != "primitive" || s.pid != 0) continue;
    parts.insert(s.name);
    const std::string layer = s.name.substr(0, s.name.find(':'));
    bool inside = false;
    for (const Span& b : spans)
      inside |= b.cat == "backward" && b.name == layer && b.pid == s.pid && b.ts <= s.ts &&
                s.end <= b.end;
    EXPECT_TRUE(inside) << s.name;
  }
  // (mnist_convnet's ReLUs run after the pools, Note [relu after pool]: no activation part.)
  for (const char* p : {"conv2d: weights and bias", "conv2d_1: weights and bias", "conv2d_1: data"})
    EXPECT_TRUE(parts.count(p)) << p;
  EXPECT_FALSE(parts.count("conv2d: data"));  // nothing before the first layer wants it
  // Overlap on: buckets of later layers are in flight while earlier layers run backward.
  EXPECT_GT(overlaps_of_buckets_with_backward(spans), 0);
}

TEST_F(Trace, WithoutOverlapNoBucketRunsDuringBackward) {
  const std::vector<Span> spans = check_schema(traced("off", false));
  int buckets = 0;
  for (const Span& s : spans) buckets += s.cat == "all-reduce" && s.tid >= 10;
  EXPECT_GE(buckets, 2 * 4 * 2) << "several buckets per step on both ranks";
  EXPECT_EQ(overlaps_of_buckets_with_backward(spans), 0);
}

// Note [device spans]: on the GPU the same spans as on the CPU, op for op, with the device work
// (layers, their primitives, loss, optimizer) on the GPU compute stream's lane, timed by CUDA
// events; waits and steps on the host's lane.
TEST_F(Trace, GpuRunHasTheCpuSpansWithDeviceWorkOnTheStreamLane) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA build or no usable GPU on this machine";
  std::map<std::string, std::vector<Span>> by_backend;
  for (const char* backend : {"cpu", "cuda"}) {
    const std::string out = dir_ + "/" + backend;
    const auto r = run("timeout 300 " + dptrain() + " train " + source_dir() +
                       "/configs/mnist_convnet.yaml --set data.dir=" + dir_ + "/data --set run_dir=" +
                       out + " --set data.max_train_samples=1000 --set data.max_test_samples=200"
                       " --set train.epochs=1 --set 'train.trace={steps: [3, 4]}'"
                       " --set train.backend=" + backend);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json doc = json::parse(read_file(out + "/train.trace.json"));
    by_backend[backend] = check_schema(doc);
    expect_nesting(by_backend[backend]);
    if (std::string(backend) == "cuda") {
      bool named = false;
      for (const json& e : doc["traceEvents"]) {
        named |= e.value("ph", "") == "M" && e["tid"] == 2 &&
                 e["args"].value("name", "") == "GPU compute stream";
        if (e.value("ph", "") == "X" && e["tid"] == 2) {  // the host's launch time is kept
          EXPECT_TRUE(e.contains("args") && e["args"]["launched"].is_number()) << e;
        }
      }
      EXPECT_TRUE(named) << "no thread_name for the GPU lane";
    }
  }
  const std::set<std::string> device{"forward", "backward", "primitive", "loss", "optimizer"};
  auto names = [&](const std::vector<Span>& spans, bool on_device_lane) {
    std::multiset<std::string> out;
    for (const Span& s : spans)
      if (device.count(s.cat) && (s.tid == 2) == on_device_lane) out.insert(s.cat + " " + s.name);
    return out;
  };
  const auto cpu = names(by_backend["cpu"], false), gpu = names(by_backend["cuda"], true);
  EXPECT_FALSE(gpu.empty());
  EXPECT_EQ(gpu, cpu) << "the GPU's device spans are not the CPU's, op for op";
  EXPECT_TRUE(names(by_backend["cuda"], false).empty()) << "device work left on the host lane";
  EXPECT_TRUE(names(by_backend["cpu"], true).empty()) << "a device lane on the CPU";
  int steps = 0;
  for (const Span& s : by_backend["cuda"]) {
    if (s.cat != "step") continue;
    EXPECT_EQ(s.tid, 0) << "steps stay on the host's clock";
    ++steps;
  }
  EXPECT_EQ(steps, 2);
}

// dptrain profile: a short traced run in a scratch directory and its per-layer table.
TEST_F(Trace, ProfilePrintsEveryLayerRatedAgainstSgemmAndCleansUp) {
  const std::string before = run("ls -d /tmp/dptrain-profile-* 2>/dev/null").output;
  const auto r = run(kMpiEnv + "timeout 300 mpirun --oversubscribe -np 2 " + dptrain() +
                     " profile " + source_dir() + "/configs/mnist_convnet.yaml --steps 6"
                     " --warmup 2 --trace " + dir_ + "/kept.json --set data.dir=" + dir_ +
                     "/data --set data.max_train_samples=1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& out = r.output;
  EXPECT_NE(out.find("dptrain profile: mnist_convnet, steps 3-8 (the mean of 6 after 2 warm-up),"
                     " 2 rank(s) x 1 thread(s), batch 64 on rank 0"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("fp32 SGEMM (oneDNN, 2048^3): "), std::string::npos) << out;
  // One row per computing layer, convolutions and the dense layer rated in GFLOP/s.
  const std::regex rated(R"((conv2d\S*|dense\S*) +(Conv2D|Dense) +([0-9.]+) +([0-9.]+) +([0-9.]+)% +([0-9.]+) +([0-9]+)%)");
  int rated_rows = 0;
  double share = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, rated)) {
      ++rated_rows;
      EXPECT_GT(std::stod(m[3]) + std::stod(m[4]), 0) << line;
      EXPECT_GT(std::stod(m[6]), 0) << line;
      share += std::stod(m[5]);
    }
  }
  EXPECT_EQ(rated_rows, 3) << out;  // conv2d, conv2d_1, dense
  EXPECT_GT(share, 10.0) << out;
  EXPECT_LT(share, 100.5) << out;
  for (const char* r : {"  weights and bias", "  data", "max_pooling2d", "softmax cross-entropy",
                        "optimizer step",
                        "wait for gradients", "(rest of the step)", "\nstep "})
    EXPECT_NE(out.find(r), std::string::npos) << r << "\n" << out;
  // Printed once (rank 0), the trace kept where asked, the scratch run directory gone.
  EXPECT_EQ(out.find("dptrain profile:"), out.rfind("dptrain profile:")) << out;
  EXPECT_TRUE(json::parse(read_file(dir_ + "/kept.json")).contains("traceEvents"));
  EXPECT_EQ(run("ls -d /tmp/dptrain-profile-* 2>/dev/null").output, before);
}

}  // namespace
}  // namespace dpt::testing
