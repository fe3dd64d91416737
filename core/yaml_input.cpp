// Strict YAML input: one document, bounded depth and size, no duplicate or merge keys.
#include "core/yaml_input.h"

#include <map>

#include "core/error.h"

namespace dpt {

namespace {

std::string line_number(const YAML::Node& n) {
  return n.Mark().is_null() ? "?" : std::to_string(n.Mark().line + 1);
}
std::string line_of(const YAML::Node& n) {
  return n.Mark().is_null() ? "" : " (line " + line_number(n) + ")";
}

void walk(const YAML::Node& n, int depth, long& nodes, const std::string& path,
          const std::string& source) {
  DPT_CHECK(++nodes <= kYamlMaxNodes,
            source << " expands to more than " << kYamlMaxNodes
                   << " YAML nodes (aliases of aliases?); a config is far smaller: write it out "
                      "without aliases");
  DPT_CHECK(depth <= kYamlMaxDepth,
            source << ": '" << path.substr(0, 80) << (path.size() > 80 ? "..." : "") << "'"
                   << line_of(n) << " nests deeper than " << kYamlMaxDepth
                   << " levels (an alias that refers to itself?); write it out without aliases");
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      walk(n[i], depth + 1, nodes, path + "." + std::to_string(i), source);
  } else if (n.IsMap()) {
    std::map<std::string, std::string> seen;  // key -> its line number
    for (const auto& kv : n) {
      DPT_CHECK(kv.first.IsScalar(), source << ": '" << path << "'" << line_of(kv.first)
                                            << " has a key that is not a plain name");
      const std::string key = kv.first.Scalar();
      DPT_CHECK(key != "<<", source << ": '" << path << "'" << line_of(kv.first)
                                    << " uses the YAML merge key '<<', which dptrain does not "
                                       "support; write the keys out");
      const auto [it, fresh] = seen.emplace(key, line_number(kv.first));
      DPT_CHECK(fresh, source << ": key '" << (path.empty() ? key : path + "." + key)
                              << "' appears twice (lines " << it->second << " and "
                              << line_number(kv.first) << "); keep one of them");
      walk(kv.second, depth + 1, nodes, path.empty() ? key : path + "." + key, source);
    }
  }
}

}  // namespace

void check_yaml_tree(const YAML::Node& root, const std::string& source) {
  long nodes = 0;
  walk(root, 0, nodes, "", source);
}

YAML::Node load_yaml(const std::string& text, const std::string& source) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    DPT_FAIL(source << " is not valid YAML: "
                    << (e.mark.is_null() ? "" : "line " + std::to_string(e.mark.line + 1) + ": ")
                    << e.msg);
  }
  DPT_CHECK(docs.size() <= 1, source << " holds " << docs.size()
                                     << " YAML documents (separated by '---'); dptrain reads "
                                        "one: keep the config in a single document");
  const YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
  check_yaml_tree(root, source);
  return root;
}

}  // namespace dpt
