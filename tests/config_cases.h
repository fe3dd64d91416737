// A small valid config and a helper that returns the error loading it raises: shared by the
// config unit tests and the hostile-config fault tests.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "models/model.h"
#include "test_helpers.h"
#include "trainer/config.h"

namespace dpt::testing {

inline constexpr const char* kBase = R"(name: t
data: {dataset: mnist, dir: /nonexistent}
model:
  input: [28, 28, 1]
  layers:
    - conv2d: {filters: 8, kernel: 3, activation: relu}
    - flatten: {}
    - dense: {units: 10}
train: {epochs: 1, batch_size: 16}
)";

inline std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  write_text(dir + "/c.yaml", yaml);
  try {
    const Config c = load_config(dir + "/c.yaml", sets);
    Model m(c.model, c.name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::string replace(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}

}  // namespace dpt::testing
