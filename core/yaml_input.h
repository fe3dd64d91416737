// YAML text dptrain did not write (config files, --set values, a checkpoint's stored config):
// one document, bounded aliases, no duplicate or merge keys.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>

namespace dpt {

// Note [yaml input]: a config is small and hand-written, so dptrain reads YAML strictly.
// yaml-cpp resolves an alias to the node it names, so `&a {k: *a}` is a node that contains
// itself and "billion laughs" (nine aliases of nine aliases ...) is a tree of 10^9 nodes in a
// few hundred bytes; every later walk would recurse forever or for minutes. So the tree is
// checked once, right after parsing, against a depth and a node-count bound far above any
// real config. Duplicate keys (yaml-cpp keeps the first), a second document (ignored) and the
// merge key `<<` (unsupported: read as a key named "<<") are errors, each naming its line.
constexpr int kYamlMaxDepth = 32;
constexpr long kYamlMaxNodes = 200000;

// Parses text as one YAML document and checks it; source names it in every error
// ("config file 'x.yaml'", "--set train.lr", "the config stored in checkpoint 'c.h5'").
YAML::Node load_yaml(const std::string& text, const std::string& source);

// The checks of load_yaml on a parsed tree.
void check_yaml_tree(const YAML::Node& root, const std::string& source);

}  // namespace dpt
