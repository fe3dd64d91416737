// Options: strict typed access to a YAML map; unknown keys and wrong types are errors with line
// numbers.
#pragma once
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace dpt {

// " (line 12)" for a node from a file, " (from --set k=v)" for one from an override; empty for
// nodes built in memory.
std::string where(const YAML::Node& node);
// Records a --set value, so that where() names the override instead of a line.
void note_override(const YAML::Node& value, const std::string& assignment);

// Wraps one YAML map. Each get() marks a key as known; finish() rejects the rest, so a
// misspelt key ("filter:" for "filters:") never passes silently.
class Options {
 public:
  Options(const YAML::Node& node, std::string path);

  bool has(const std::string& key) const;
  YAML::Node node(const std::string& key);  // marks the key known; may be undefined
  int64_t get_int(const std::string& key, int64_t fallback, int64_t min = INT64_MIN);
  int64_t require_int(const std::string& key, int64_t min = INT64_MIN);
  double get_double(const std::string& key, double fallback);
  double get_double_in(const std::string& key, double fallback, double lo, double hi);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_string(const std::string& key, const std::string& fallback);
  std::string get_choice(const std::string& key, const std::string& fallback,
                         const std::vector<std::string>& choices);
  // An int or a list of two ints ([3, 3]); Keras allows both for kernel/pool/strides.
  std::pair<int64_t, int64_t> get_pair(const std::string& key, int64_t fallback, int64_t min);
  void finish() const;  // throws on any key never asked for

  const std::string& path() const { return path_; }
  // "train.epochs"; top-level keys have no prefix (path "").
  std::string key_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  std::string at(const std::string& key) const;  // "model.layers[2].conv2d.filters (line 9)"

 private:
  template <typename T>
  T as(const std::string& key, const char* type_name) const;

  YAML::Node node_;
  std::string path_;
  std::set<std::string> used_;
};

}  // namespace dpt
