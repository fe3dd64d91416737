// Act: the element-wise activation functions by name, shared by layers and both backends.
#pragma once
#include <string>

namespace dpt {

enum class Act { kLinear, kRelu, kSigmoid, kTanh, kSoftmax };

// "relu" -> Act::kRelu; an unknown name is an error naming `where` (the config key).
Act parse_activation(const std::string& name, const std::string& where);
const char* activation_name(Act a);

}  // namespace dpt
