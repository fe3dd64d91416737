// Options: strict typed access to a YAML map with key paths and line numbers in every error.
#include "core/options.h"

#include <algorithm>
#include <cmath>

namespace dpt {

namespace {

// Values that came from --set rather than the file: their marks say "line 1" of their own
// one-line text, which would point into the config file.
std::vector<std::pair<YAML::Node, std::string>>& override_values() {
  static std::vector<std::pair<YAML::Node, std::string>> v;
  return v;
}

bool inside(const YAML::Node& tree, const YAML::Node& n) {
  if (tree.is(n)) return true;
  if (tree.IsMap()) {
    for (const auto& kv : tree)
      if (inside(kv.first, n) || inside(kv.second, n)) return true;
  } else if (tree.IsSequence()) {
    for (const auto& item : tree)
      if (inside(item, n)) return true;
  }
  return false;
}

}  // namespace

void note_override(const YAML::Node& value, const std::string& assignment) {
  override_values().emplace_back(value, assignment);
}

std::string where(const YAML::Node& node) {
  if (!node.IsDefined()) return "";
  for (const auto& [value, text] : override_values())
    if (inside(value, node)) return " (from --set " + text + ")";
  if (node.Mark().is_null()) return "";
  return " (line " + std::to_string(node.Mark().line + 1) + ")";
}

Options::Options(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
  DPT_CHECK(!node.IsDefined() || node.IsNull() || node.IsMap(),
            (path_.empty() ? "the config" : path_)
                << where(node) << " must be a map of key: value");
}

bool Options::has(const std::string& key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

std::string Options::at(const std::string& key) const {
  return key_path(key) + (node_.IsMap() ? where(node_[key]) : "");
}

YAML::Node Options::node(const std::string& key) {
  used_.insert(key);
  return node_.IsMap() ? node_[key] : YAML::Node();
}

template <typename T>
T Options::as(const std::string& key, const char* type_name) const {
  const YAML::Node n = node_[key];
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    DPT_FAIL("config key " << at(key) << " must be " << type_name << ", got '"
                           << (n.IsScalar() ? n.Scalar() : std::string("a map or list")) << "'");
  }
}

int64_t Options::get_int(const std::string& key, int64_t fallback, int64_t min) {
  used_.insert(key);
  if (!has(key)) return fallback;
  const int64_t v = as<int64_t>(key, "an integer");
  DPT_CHECK(v >= min, "config key " << at(key) << " must be at least " << min << ", got " << v);
  return v;
}

int64_t Options::require_int(const std::string& key, int64_t min) {
  DPT_CHECK(has(key), "config key " << key_path(key) << where(node_) << " is required");
  return get_int(key, 0, min);
}

double Options::get_double(const std::string& key, double fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  const double v = as<double>(key, "a number");
  // .nan compares false with everything, so a NaN limit would silently never trigger.
  DPT_CHECK(std::isfinite(v), "config key " << at(key) << " must be a finite number, got " << v);
  return v;
}

double Options::get_double_in(const std::string& key, double fallback, double lo, double hi) {
  const double v = get_double(key, fallback);
  DPT_CHECK(v >= lo && v <= hi,
            "config key " << at(key) << " must be in [" << lo << ", " << hi << "], got " << v);
  return v;
}

bool Options::get_bool(const std::string& key, bool fallback) {
  used_.insert(key);
  return has(key) ? as<bool>(key, "true or false") : fallback;
}

std::string Options::get_string(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  DPT_CHECK(node_[key].IsScalar(), "config key " << at(key) << " must be a string");
  return node_[key].Scalar();
}

std::string Options::get_choice(const std::string& key, const std::string& fallback,
                                const std::vector<std::string>& choices) {
  const std::string v = get_string(key, fallback);
  if (std::find(choices.begin(), choices.end(), v) != choices.end()) return v;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  DPT_FAIL("config key " << at(key) << " is '" << v << "'; expected one of: " << list);
}

std::pair<int64_t, int64_t> Options::get_pair(const std::string& key, int64_t fallback,
                                              int64_t min) {
  used_.insert(key);
  if (!has(key)) return {fallback, fallback};
  const YAML::Node n = node_[key];
  if (n.IsSequence()) {
    DPT_CHECK(n.size() == 2, "config key " << at(key) << " must be one integer or a list of two");
    int64_t a = 0, b = 0;
    try {
      a = n[0].as<int64_t>();
      b = n[1].as<int64_t>();
    } catch (const YAML::Exception&) {
      DPT_FAIL("config key " << at(key) << " must be one integer or a list of two integers");
    }
    DPT_CHECK(a >= min && b >= min, "config key " << at(key) << " must be at least " << min);
    return {a, b};
  }
  const int64_t v = get_int(key, fallback, min);
  return {v, v};
}

void Options::finish() const {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string k = kv.first.as<std::string>();
    DPT_CHECK(used_.count(k), "unknown config key "
                                  << key_path(k) << where(kv.first)
                                  << "; check its spelling against docs/CONFIG.md");
  }
}

}  // namespace dpt
