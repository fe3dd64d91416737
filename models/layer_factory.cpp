// Layer factory: config names (conv2d, max_pool, ...) to Layer objects, with strict options.
#include "models/layer_factory.h"

#include <functional>
#include <map>

#include "core/options.h"
#include "models/layers/activation.h"
#include "models/layers/batch_norm.h"
#include "models/layers/conv2d.h"
#include "models/layers/dense.h"
#include "models/layers/dropout.h"
#include "models/layers/flatten.h"
#include "models/layers/pool2d.h"
#include "models/layers/rescaling.h"

namespace dpt {

namespace {

using Maker = std::function<std::unique_ptr<Layer>(Options&)>;

const std::map<std::string, Maker>& makers() {
  static const std::map<std::string, Maker> m = {
      {"conv2d", [](Options& o) { return std::make_unique<Conv2D>(o); }},
      {"dense", [](Options& o) { return std::make_unique<Dense>(o); }},
      {"max_pool", [](Options& o) { return std::make_unique<Pool2D>(PoolKind::kMax, o); }},
      {"avg_pool", [](Options& o) { return std::make_unique<Pool2D>(PoolKind::kAverage, o); }},
      {"global_avg_pool",
       [](Options& o) { return std::make_unique<Pool2D>(PoolKind::kGlobalAverage, o); }},
      {"batch_norm", [](Options& o) { return std::make_unique<BatchNorm>(o); }},
      {"dropout", [](Options& o) { return std::make_unique<Dropout>(o); }},
      {"flatten", [](Options&) { return std::make_unique<Flatten>(); }},
      {"rescaling", [](Options& o) { return std::make_unique<Rescaling>(o); }},
      {"relu", [](Options&) { return std::make_unique<Activation>(Act::kRelu); }},
      {"sigmoid", [](Options&) { return std::make_unique<Activation>(Act::kSigmoid); }},
      {"tanh", [](Options&) { return std::make_unique<Activation>(Act::kTanh); }},
      {"softmax", [](Options&) { return std::make_unique<Activation>(Act::kSoftmax); }},
      {"gelu", [](Options&) { return std::make_unique<Activation>(Act::kGelu); }},
      {"activation",
       [](Options& o) {
         return std::make_unique<Activation>(
             parse_activation(o.get_string("fn", "relu"), o.at("fn")));
       }},
  };
  return m;
}

// Keras' own spellings are accepted too, so a Keras user's names just work.
const std::map<std::string, std::string>& aliases() {
  static const std::map<std::string, std::string> a = {
      {"max_pool2d", "max_pool"},
      {"max_pooling2d", "max_pool"},
      {"average_pooling2d", "avg_pool"},
      {"avg_pool2d", "avg_pool"},
      {"global_average_pooling2d", "global_avg_pool"},
      {"batchnorm", "batch_norm"},
      {"batch_normalization", "batch_norm"}};
  return a;
}

std::string snake_case(const std::string& type) {
  std::string out;
  for (size_t i = 0; i < type.size(); ++i) {
    const char c = type[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      const bool after_lower = i > 0 && std::islower(static_cast<unsigned char>(type[i - 1]));
      if (after_lower) out += '_';
      out += char(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;  // Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, BatchNormalization ->
               // batch_normalization
}

}  // namespace

std::unique_ptr<Layer> make_layer(const YAML::Node& entry, const std::string& path,
                                  std::map<std::string, int>& name_counts) {
  DPT_CHECK(entry.IsMap() && entry.size() == 1,
            path << where(entry) << " must be one 'type: {options}' entry, e.g. "
                 << "'- conv2d: {filters: 32, kernel: 3}'");
  const auto kv = *entry.begin();
  std::string type = kv.first.as<std::string>();
  if (aliases().count(type)) type = aliases().at(type);
  const auto it = makers().find(type);
  if (it == makers().end()) {
    std::string known;
    for (const auto& m : makers()) known += (known.empty() ? "" : ", ") + m.first;
    DPT_FAIL("unknown layer '" << kv.first.as<std::string>() << "' at " << path << where(kv.first)
                               << "; known layers: " << known);
  }
  Options opt(kv.second, path + "." + type);
  std::string name = opt.get_string("name", "");
  auto layer = it->second(opt);
  opt.finish();
  if (name.empty()) {
    const std::string base = snake_case(layer->type());
    const int k = name_counts[base]++;
    name = k == 0 ? base : base + "_" + std::to_string(k);
  }
  layer->set_name(name);
  return layer;
}

}  // namespace dpt
