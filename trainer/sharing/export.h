// Export of a trained model to Keras 3 (.keras) and ONNX (the command:
// trainer/cli/export_command.cpp).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"

namespace dpt {

// Both formats take what dptrain's first layer takes: float32 (N, H, W, C) images scaled to
// [0, 1] (pixel / 255), and give the logits (N, classes) of the last layer, as the model
// does (dptrain's loss applies the softmax; apply it yourself for probabilities).
// See docs/SHARING.md.

// A Keras 3 .keras zip: config.json (a Sequential), model.weights.h5, metadata.json.
// keras.models.load_model opens it without custom code.
void export_keras(const Model& model, const std::string& path);

// An ONNX model (IR 8, opset 17): input "input" (N, H, W, C), output "logits" (N, classes).
// metadata: (key, value) pairs stored as the model's metadata_props.
void export_onnx(const Model& model, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& metadata);

// The parameters of model.layers()[layer], in the layer's order (kernel, bias; gamma, beta,
// moving_mean, moving_variance), which is Keras' variable order too.
std::vector<const Param*> layer_params(const Model& model, size_t layer);

// Checks what both formats need of layer names (unique, no '/'); throws naming the layer.
void check_exportable_names(const Model& model);

}  // namespace dpt
