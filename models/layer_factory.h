// Layer factory: turns one `- type: {options}` entry of the config's layer list into a Layer.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>

#include "models/layers/layer.h"

namespace dpt {

// `path` is "model.layers[3]" for error messages. Sets the Keras-style auto name
// (conv2d, conv2d_1, ...) unless the options give `name:`.
std::unique_ptr<Layer> make_layer(const YAML::Node& entry, const std::string& path,
                                  std::map<std::string, int>& name_counts);

}  // namespace dpt
