// `dptrain export`: rebuilds the checkpoint's model and writes it as Keras 3 and/or ONNX.
#include <cstdio>
#include <memory>

#include "core/safe_files.h"
#include "data/shards.h"
#include "trainer/checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/config.h"
#include "trainer/sharing/export.h"

namespace dpt::cli {

namespace {
bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

struct ExportArgs {
  std::string checkpoint, keras, onnx;
};

int run_export(const std::string& checkpoint, const std::string& keras_path,
               const std::string& onnx_path) {
  DPT_CHECK(!keras_path.empty() || !onnx_path.empty(),
            "dptrain export: nothing to write; give --keras OUT.keras and/or --onnx OUT.onnx");
  // keras.models.load_model refuses any other extension.
  DPT_CHECK(keras_path.empty() || ends_with(keras_path, ".keras"),
            "--keras '" << keras_path
                        << "': Keras 3 loads only files ending in .keras; "
                           "name the output OUT.keras");
  for (const auto& [out, what] : {std::pair{keras_path, "--keras"}, {onnx_path, "--onnx"}})
    if (!out.empty()) check_output_path(out, what, {checkpoint});
  DPT_CHECK(keras_path.empty() || onnx_path.empty() || keras_path != onnx_path,
            "--keras and --onnx name the same file '" << keras_path << "'; give each its own");
  const std::string config_text = checkpoint_config(checkpoint);
  const Config cfg = config_of_checkpoint(checkpoint);
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

}  // namespace

void add_export_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd =
      app.add_subcommand("export", "write a checkpoint's model as Keras 3 (.keras) and/or ONNX");
  cmd->add_option("checkpoint", a->checkpoint, "a checkpoint file (ckpt-*.h5)")->required();
  cmd->add_option("--keras", a->keras, "write a Keras 3 model (keras.models.load_model) here");
  cmd->add_option("--onnx", a->onnx, "write an ONNX model (opset 17, NHWC input) here");
  cmd->callback([a, &action] {
    action = [a](Communicator& c) {
      require_one_process(c, "export");
      return run_export(a->checkpoint, a->keras, a->onnx);
    };
  });
}

}  // namespace dpt::cli
