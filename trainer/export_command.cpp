// `dptrain export`: rebuilds the checkpoint's model and writes it as Keras 3 and/or ONNX.
#include <cstdio>
#include <set>

#include "data/shards.h"
#include "trainer/build_info.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/export.h"

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

namespace {
bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}
}  // namespace

int run_export(const std::string& checkpoint, const std::string& keras_path,
               const std::string& onnx_path) {
  DPT_CHECK(!keras_path.empty() || !onnx_path.empty(),
            "dptrain export: nothing to write; give --keras OUT.keras and/or --onnx OUT.onnx");
  // keras.models.load_model refuses any other extension.
  DPT_CHECK(keras_path.empty() || ends_with(keras_path, ".keras"),
            "--keras '" << keras_path
                        << "': Keras 3 loads only files ending in .keras; "
                           "name the output OUT.keras");
  const std::string config_text = checkpoint_config(checkpoint);
  const Config cfg = parse_config(YAML::Load(config_text));
  Model model(cfg.model, cfg.name);
  std::string warning;
  const TrainPosition pos = read_checkpoint(checkpoint, model, nullptr, &warning);
  if (!warning.empty()) std::fprintf(stderr, "dptrain: warning: %s\n", warning.c_str());
  const Shape& in = model.input_shape();
  std::string input = "float32 (N";
  for (int64_t d : in) input += ", " + std::to_string(d);
  input += "), pixel / 255";
  if (!keras_path.empty()) {
    export_keras(model, keras_path);
    std::printf("wrote %s (Keras 3: keras.models.load_model; input %s; output logits)\n",
                keras_path.c_str(), input.c_str());
  }
  if (!onnx_path.empty()) {
    export_onnx(model, onnx_path,
                {{"dptrain_checkpoint", checkpoint.substr(checkpoint.rfind('/') + 1)},
                 {"dptrain_epoch", std::to_string(pos.epoch)},
                 {"dptrain_global_step", std::to_string(pos.global_step)},
                 {"dptrain_dataset", cfg.data.dataset},
                 {"dptrain_config", config_text}});
    std::printf("wrote %s (ONNX opset 17: input \"input\" %s; output \"logits\")\n",
                onnx_path.c_str(), input.c_str());
  }
  return 0;
}

}  // namespace dpt
