// Activation names: parse and print the functions of Act.
#include "models/layers/act.h"

#include "core/error.h"

namespace dpt {

Act parse_activation(const std::string& name, const std::string& where) {
  if (name == "linear" || name == "none") return Act::kLinear;
  if (name == "relu") return Act::kRelu;
  if (name == "sigmoid") return Act::kSigmoid;
  if (name == "tanh") return Act::kTanh;
  if (name == "softmax") return Act::kSoftmax;
  if (name == "gelu") return Act::kGelu;
  DPT_FAIL("unknown activation '" << name << "' at " << where
                                  << "; expected linear, relu, sigmoid, tanh, softmax or gelu");
}

const char* activation_name(Act a) {
  switch (a) {
    case Act::kLinear:
      return "linear";
    case Act::kRelu:
      return "relu";
    case Act::kSigmoid:
      return "sigmoid";
    case Act::kTanh:
      return "tanh";
    case Act::kSoftmax:
      return "softmax";
    case Act::kGelu:
      return "gelu";
  }
  return "?";
}

}  // namespace dpt
