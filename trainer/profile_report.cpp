// profile_table: rank 0's spans of each traced step, summed per layer and rated by FLOPs.
#include "trainer/profile_report.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "core/trace.h"

namespace dpt {

namespace {

struct Sums {
  std::vector<std::pair<double, double>> steps;  // [start, end) of rank 0's step spans, us
  std::map<std::string, double> forward, backward, other;  // us inside steps, by name
  std::map<std::string, double> primitive;  // "conv2d: data": parts of a layer's backward
};

Sums sum_rank0(const nlohmann::json& trace) {
  Sums s;
  std::vector<const nlohmann::json*> spans;
  for (const auto& e : trace.at("traceEvents")) {
    const int tid = e.value("tid", -1);
    if (e.value("ph", "") != "X" || e.value("pid", -1) != 0) continue;
    if (tid != trace::kCompute && tid != trace::kDevice) continue;
    if (e.value("cat", "") == "step")
      s.steps.emplace_back(e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>());
    else
      spans.push_back(&e);
  }
  std::sort(s.steps.begin(), s.steps.end());
  for (const auto* e : spans) {
    const double ts = (*e)["ts"].get<double>(), dur = (*e)["dur"].get<double>();
    bool in_step = false;
    if ((*e)["tid"] == trace::kDevice) {
      // Device work (Note [device spans]) runs behind the host: it belongs to the step whose
      // host span launched it (validation's forward, launched between steps, belongs to none).
      const double launched = (*e)["args"]["launched"].get<double>();
      for (const auto& [a, b] : s.steps) in_step |= a <= launched && launched < b;
    } else {
      for (const auto& [a, b] : s.steps) in_step |= a <= ts && ts + dur <= b;
    }
    if (!in_step) continue;
    const std::string cat = (*e)["cat"], name = (*e)["name"];
    if (cat == "primitive") {  // inside its layer's backward span: its split, not more time
      s.primitive[name] += dur;
      continue;
    }
    (cat == "forward" ? s.forward : cat == "backward" ? s.backward : s.other)[name] += dur;
  }
  return s;
}

std::string row(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string row(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return std::string(buf) + "\n";
}

}  // namespace

std::string profile_table(const nlohmann::json& trace, const Model& model, const ProfileSetup& p) {
  const Sums s = sum_rank0(trace);
  if (s.steps.empty()) return "profile: the trace holds no step of rank 0\n";
  const double n = double(s.steps.size());
  double step_us = 0;
  for (const auto& [a, b] : s.steps) step_us += b - a;
  step_us /= n;
  const auto ms = [&](double us_total) { return us_total / n / 1000.0; };
  std::string out = row("%-22s %-18s %10s %11s %7s %9s %9s", "layer", "type", "forward ms",
                        "backward ms", "share", "GFLOP/s", "of SGEMM");
  double accounted = 0, step_flops = 0;
  const auto& layers = model.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string& name = layers[i]->name();
    const auto f = s.forward.find(name), b = s.backward.find(name);
    const double fwd = f == s.forward.end() ? 0 : f->second;
    const double bwd = b == s.backward.end() ? 0 : b->second;
    if (fwd == 0 && bwd == 0) continue;  // reshapes take no time
    accounted += fwd + bwd;
    // Backward of a matrix product: the weight gradient, plus the input gradient unless it is
    // the first layer that learns (nothing before it wants one): 2x or 1x the forward.
    const double ff = layers[i]->forward_flops(model.shapes()[i]) * double(p.local_batch);
    const int first = model.first_param_layer();
    const double bf = int(i) < first ? 0 : ff * (int(i) == first ? 1.0 : 2.0);
    step_flops += ff + bf;
    const double share = 100.0 * (fwd + bwd) / n / step_us;
    if (ff > 0) {
      const double gflops = (ff + bf) / ((fwd + bwd) / n * 1e-6) / 1e9;
      out += row("%-22s %-18s %10.3f %11.3f %6.1f%% %9.1f %8.0f%%", name.c_str(),
                 layers[i]->type().c_str(), ms(fwd), ms(bwd), share, gflops,
                 100.0 * gflops / p.sgemm_gflops);
    } else {
      out += row("%-22s %-18s %10.3f %11.3f %6.1f%% %9s %9s", name.c_str(),
                 layers[i]->type().c_str(), ms(fwd), ms(bwd), share, "-", "-");
    }
    // The backward's parts where it splits into primitives (a convolution's data and
    // weight gradients, its activation's): each a forward's worth of FLOPs, but the activation.
    for (const auto& [part_name, us] : s.primitive) {
      if (part_name.rfind(name + ": ", 0) != 0) continue;
      const std::string part = "  " + part_name.substr(name.size() + 2);
      const double pf = part == "  activation" ? 0 : ff;
      if (pf > 0) {
        const double gflops = pf / (us / n * 1e-6) / 1e9;
        out += row("%-41s %10s %11.3f %6.1f%% %9.1f %8.0f%%", part.c_str(), "", ms(us),
                   100.0 * us / n / step_us, gflops, 100.0 * gflops / p.sgemm_gflops);
      } else {
        out += row("%-41s %10s %11.3f %6.1f%%", part.c_str(), "", ms(us), 100.0 * us / n / step_us);
      }
    }
  }
  for (const auto& [name, us] : s.other) {
    accounted += us;
    out += row("%-41s %10.3f %11s %6.1f%%", name.c_str(), ms(us), "", 100.0 * us / n / step_us);
  }
  const double rest = std::max(0.0, step_us * n - accounted);
  out += row("%-41s %10.3f %11s %6.1f%%", "(rest of the step)", ms(rest), "",
             100.0 * rest / n / step_us);
  const double step_gflops = step_flops / (step_us * 1e-6) / 1e9;
  out += row("%-41s %10.3f %11s %6.1f%% %9.1f %8.0f%%", "step", step_us / 1000.0, "", 100.0,
             step_gflops, 100.0 * step_gflops / p.sgemm_gflops);
  return out;
}

}  // namespace dpt
