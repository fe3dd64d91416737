// Act: the element-wise activation functions by name, shared by layers and both backends.
#pragma once
#include <string>

namespace dpt {

// gelu (exact, with erf, as Keras' default and PyTorch's nn.GELU) is a layer of its own: its
// backward needs the input, so it is never fused into a conv or dense layer.
enum class Act { kLinear, kRelu, kSigmoid, kTanh, kSoftmax, kGelu };

// "relu" -> Act::kRelu; an unknown name is an error naming `where` (the config key).
Act parse_activation(const std::string& name, const std::string& where);
const char* activation_name(Act a);

}  // namespace dpt
