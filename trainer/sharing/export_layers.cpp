// What both exports need of a model: each layer's parameters in Keras' order, and layer names
// that both formats accept.
#include <set>

#include "trainer/sharing/export.h"

namespace dpt {

std::vector<const Param*> layer_params(const Model& model, size_t layer) {
  std::vector<const Param*> out;
  for (size_t k = 0; k < model.params().size(); ++k)
    if (model.param_layer(k) == int(layer)) out.push_back(&model.params()[k]);
  return out;
}

void check_exportable_names(const Model& model) {
  std::set<std::string> seen{"input_layer"};  // Keras' name for the input
  for (const auto& l : model.layers()) {
    DPT_CHECK(l->name().find('/') == std::string::npos && !l->name().empty(),
              l->label() << ": Keras and ONNX names cannot hold '/'; rename the layer (name:) "
                            "in the config and retrain, or export a config without it");
    DPT_CHECK(seen.insert(l->name()).second,
              l->label() << ": another layer has the same name; Keras needs unique layer names. "
                            "Give one of them another name: in the config");
  }
}

}  // namespace dpt
