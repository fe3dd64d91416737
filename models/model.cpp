// Model: builds the Sequential, lays out flat parameter buffers, runs forward/backward, prints
// summary.
#include "models/model.h"

#include <iomanip>
#include <sstream>

#include "core/options.h"
#include "core/trace.h"
#include "models/initializers.h"
#include "models/kernels/precision_support.h"
#include "models/layer_factory.h"
#include "models/layers/activation.h"
#include "models/layers/conv2d.h"
#include "models/layers/dense.h"
#include "models/layers/pool2d.h"

namespace dpt {

namespace {
Shape parse_input(const YAML::Node& n) {
  DPT_CHECK(n.IsSequence() && n.size() >= 1 && n.size() <= 3,
            "config key model.input" << where(n) << " must be a list like [28, 28, 1] (H, W, C)");
  Shape s;
  for (const auto& d : n) {
    int64_t v = 0;
    try {
      v = d.as<int64_t>();
    } catch (const YAML::Exception&) {
      DPT_FAIL("config key model.input" << where(d) << " must hold integers");
    }
    DPT_CHECK(v >= 1, "config key model.input" << where(d) << " has a dimension below 1");
    s.push_back(v);
  }
  return s;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}
}  // namespace

Model::Model(const YAML::Node& model_node, std::string name) : name_(std::move(name)) {
  const std::vector<ParamSpec> specs = build_layers(model_node);
  check_ends_in_logits();
  fuse_relu_into_pools();
  lay_out_parameters(specs);
}

// The layers of model.layers with their shapes; returns their parameters' specs in order.
std::vector<ParamSpec> Model::build_layers(const YAML::Node& model_node) {
  Options opt(model_node, "model");
  DPT_CHECK(opt.has("input"), "config key model.input is missing; e.g. input: [28, 28, 1]");
  DPT_CHECK(opt.has("layers"), "config key model.layers is missing");
  shapes_.push_back(parse_input(opt.node("input")));
  const YAML::Node list = opt.node("layers");
  opt.finish();
  DPT_CHECK(list.IsSequence() && list.size() > 0,
            "config key model.layers" << where(list) << " must be a non-empty list of layers");
  std::map<std::string, int> name_counts;
  std::vector<ParamSpec> specs;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = "model.layers[" + std::to_string(i) + "]";
    auto layer = make_layer(list[i], path, name_counts);
    layer->set_index(int(i));
    // Names key the checkpoint's datasets and the exports: two alike would collide there.
    for (const auto& earlier : layers_)
      DPT_CHECK(earlier->name() != layer->name(),
                "config " << path << where(list[i]) << ": layer name '" << layer->name()
                          << "' is already taken by model.layers[" << earlier->index()
                          << "]; give each layer its own name");
    try {
      shapes_.push_back(layer->output_shape(shapes_.back()));
      for (auto& s : layer->param_specs(shapes_[i])) {
        specs.push_back(s);
        param_layer_.push_back(int(i));
      }
      DPT_CHECK(num_elements(shapes_.back()) <= kMaxSampleElements,
                "its output " << shape_str(shapes_.back(), true) << " holds over "
                              << kMaxSampleElements << " values per image; make the layer smaller");
    } catch (const Error& e) {
      DPT_FAIL("config " << path << where(list[i]) << ": " << e.what());
    }
    layers_.push_back(std::move(layer));
  }
  return specs;
}

void Model::check_ends_in_logits() const {
  DPT_CHECK(output_shape().size() == 1, "the model's last layer outputs "
                                            << shape_str(output_shape(), true)
                                            << "; it must output one logit per class: "
                                               "end with flatten and dense");
  const Layer& last = *layers_.back();
  const bool last_softmax =
      (last.type() == "Dense" && static_cast<const Dense&>(last).activation() == Act::kSoftmax) ||
      (last.type() == "Activation" && static_cast<const Activation&>(last).act() == Act::kSoftmax);
  DPT_CHECK(!last_softmax, "the last layer ("
                               << last.name()
                               << ") applies softmax, but the loss "
                                  "works on logits and applies softmax itself; remove the softmax");
}

// Note [relu after pool] (conv2d.h): same numbers, less work in backward.
void Model::fuse_relu_into_pools() {
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    auto* conv = dynamic_cast<Conv2D*>(layers_[i].get());
    auto* pool = dynamic_cast<Pool2D*>(layers_[i + 1].get());
    if (conv && pool && conv->activation() == Act::kRelu && pool->kind() == PoolKind::kMax) {
      conv->defer_activation();
      pool->set_post_activation(Act::kRelu);
    }
  }
}

// Trainable parameters in one flat buffer (with its gradient twin), the rest (BatchNorm
// statistics, frozen weights) in another; each layer is bound to its slices.
void Model::lay_out_parameters(const std::vector<ParamSpec>& specs) {
  int64_t trainable = 0, state = 0;
  for (const auto& s : specs) (s.trainable ? trainable : state) += num_elements(s.shape);
  weights_ = Tensor({trainable});
  grads_ = Tensor({trainable});
  state_ = Tensor({std::max<int64_t>(state, 1)});
  int64_t wo = 0, so = 0;
  for (const auto& s : specs) {
    Param p{s, nullptr, nullptr};
    if (s.trainable) {
      p.value = weights_.data() + wo;
      p.grad = grads_.data() + wo;
      wo += num_elements(s.shape);
    } else {
      p.value = state_.data() + so;
      so += num_elements(s.shape);
    }
    params_.push_back(p);
  }
  if (state == 0) state_ = Tensor({0});
  for (auto& p : params_) p.host_value = p.value;
  host_weights_ = weights_;
  host_state_ = state_;
  first_param_layer_ = int(layers_.size());
  for (size_t k = 0; k < params_.size(); ++k)
    if (params_[k].spec.trainable)
      first_param_layer_ = std::min(first_param_layer_, param_layer_[k]);
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Param*> mine;
    for (size_t k = 0; k < params_.size(); ++k)
      if (param_layer_[k] == int(i)) mine.push_back(&params_[k]);
    layers_[i]->bind(mine);
  }
}

void Model::initialize(uint64_t seed) {
  for (size_t k = 0; k < params_.size(); ++k) {
    const Param& p = params_[k];
    dpt::initialize(p.host_value, p.spec.shape, p.spec.init, p.spec.fan_in, p.spec.fan_out, seed,
                    uint32_t(k), layers_[param_layer_[k]]->label() + " " + p.spec.name);
  }
  upload();
}

void Model::to_device(Device device) {
  if (device == device_) return;
  DPT_CHECK(device == Device::kCuda, "models move from the CPU to a GPU, not back");
  Tensor w(weights_.shape(), device), g(grads_.shape(), device), st(state_.shape(), device);
  copy_memory(w.data(), true, weights_.data(), false, size_t(weights_.size()) * sizeof(float));
  copy_memory(st.data(), true, state_.data(), false, size_t(state_.size()) * sizeof(float));
  for (auto& p : params_) {
    const bool trainable = p.spec.trainable;
    const int64_t off = p.host_value - (trainable ? host_weights_.data() : host_state_.data());
    p.value = (trainable ? w.data() : st.data()) + off;
    p.grad = trainable ? g.data() + off : nullptr;
  }
  weights_ = w;
  grads_ = g;
  state_ = st;
  device_ = device;
  buffers_.clear();
  current_ = nullptr;
}

void Model::set_precision(Precision p) {
  check_precision(p, device_ == Device::kCuda);
  precision_ = p;
  for (auto& l : layers_) l->set_precision(p);
}

void Model::download() {
  if (device_ == Device::kCpu) return;
  copy_memory(host_weights_.data(), false, weights_.data(), true,
              size_t(weights_.size()) * sizeof(float));
  copy_memory(host_state_.data(), false, state_.data(), true,
              size_t(state_.size()) * sizeof(float));
}

void Model::upload() {
  if (device_ == Device::kCpu) return;
  copy_memory(weights_.data(), true, host_weights_.data(), false,
              size_t(weights_.size()) * sizeof(float));
  copy_memory(state_.data(), true, host_state_.data(), false,
              size_t(state_.size()) * sizeof(float));
}

Model::Buffers& Model::buffers(int64_t batch) {
  auto it = buffers_.find(batch);
  if (it != buffers_.end()) return it->second;
  Buffers b;
  b.acts.resize(layers_.size() + 1);
  b.grads.resize(layers_.size() + 1);
  // A reshape layer's output aliases its input, and its input gradient aliases its output
  // gradient; everything else owns its buffer.
  for (size_t i = 1; i <= layers_.size(); ++i) {
    if (!layers_[i - 1]->is_reshape()) b.acts[i] = Tensor(with_batch(batch, shapes_[i]), device_);
    if (i == layers_.size() || !layers_[i]->is_reshape())
      b.grads[i] = Tensor(with_batch(batch, shapes_[i]), device_);
  }
  return buffers_.emplace(batch, std::move(b)).first->second;
}

const Tensor& Model::forward(const Tensor& x, const StepContext& ctx) {
  DPT_CHECK(x.device() == device_,
            "model '" << name_ << "' and its input are on different devices");
  DPT_CHECK(Shape(x.shape().begin() + 1, x.shape().end()) == input_shape(),
            "model '" << name_ << "' expects input " << shape_str(input_shape(), true)
                      << " but the data is " << shape_str(x.shape()));
  Buffers& b = buffers(x.dim(0));
  current_ = &b;
  b.acts[0] = x;  // a view: the caller's batch buffer
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i]->is_reshape()) {
      b.acts[i + 1] = b.acts[i].reshaped(with_batch(x.dim(0), shapes_[i + 1]));
      continue;
    }
    trace::Span span("forward", layers_[i]->name());
    layers_[i]->forward(b.acts[i], b.acts[i + 1], ctx);
  }
  return b.acts.back();
}

Tensor& Model::logits_grad() {
  DPT_ASSERT(current_);
  return current_->grads.back();
}

void Model::backward(const std::function<void(int)>& on_layer_done) {
  DPT_ASSERT(current_);
  Buffers& b = *current_;
  const int64_t n = b.acts[0].dim(0);
  for (int i = int(layers_.size()) - 1; i >= 0; --i) {
    Layer& l = *layers_[size_t(i)];
    if (i < first_param_layer_) {
      // Nothing at or before i learns (a frozen whitening conv, an activation after it).
    } else if (l.is_reshape()) {
      b.grads[size_t(i)] = b.grads[size_t(i) + 1].reshaped(with_batch(n, shapes_[size_t(i)]));
    } else {
      // No layer before i learns anything: its input gradient would be thrown away.
      const bool want_dx = i > first_param_layer_;
      trace::Span span("backward", l.name());
      l.backward(b.acts[size_t(i)], b.acts[size_t(i) + 1], b.grads[size_t(i) + 1],
                 want_dx ? &b.grads[size_t(i)] : nullptr);
    }
    if (on_layer_done) on_layer_done(i);
  }
}

std::string Model::summary() const {
  // Columns widen to their longest cell (Keras widens too), so long layer names never run
  // into the shape column: at least 38/28 characters as Keras 2 printed them.
  std::vector<std::string> names, shapes, counts;
  int64_t total = 0, trainable = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    int64_t count = 0;
    for (size_t k = 0; k < params_.size(); ++k)
      if (param_layer_[k] == int(i)) {
        count += params_[k].size();
        if (params_[k].spec.trainable) trainable += params_[k].size();
      }
    total += count;
    names.push_back(" " + layers_[i]->name() + " (" + layers_[i]->type() + ")");
    shapes.push_back(shape_str(shapes_[i + 1], true));
    counts.push_back(with_commas(count));
  }
  size_t w1 = 38, w2 = 28, w3 = 8;
  for (size_t i = 0; i < names.size(); ++i) {
    w1 = std::max(w1, names[i].size() + 2);
    w2 = std::max(w2, shapes[i].size() + 2);
    w3 = std::max(w3, counts[i].size());
  }
  const std::string rule(std::max<size_t>(80, w1 + w2 + w3), '_');
  const std::string dbl(rule.size(), '=');
  std::ostringstream os;
  os << "Model: \"" << name_ << "\"\n" << rule << "\n";
  os << std::left << std::setw(int(w1)) << " Layer (type)" << std::setw(int(w2)) << "Output Shape"
     << "Param #\n"
     << dbl << "\n";
  for (size_t i = 0; i < names.size(); ++i) {
    os << std::setw(int(w1)) << names[i] << std::setw(int(w2)) << shapes[i] << counts[i] << "\n";
    os << (i + 1 < names.size() ? "\n" : "");
  }
  os << dbl << "\n";
  os << "Total params: " << with_commas(total) << "\n";
  os << "Trainable params: " << with_commas(trainable) << "\n";
  os << "Non-trainable params: " << with_commas(total - trainable) << "\n" << rule << "\n";
  return os.str();
}

std::string Model::signature_text() const {
  std::string s;
  for (const auto& l : signature()) s += l + "\n";
  return s;
}

SignatureDifference first_difference(const std::string& a, const std::string& b) {
  SignatureDifference d;
  if (a == b) return d;
  d.differ = true;
  size_t pa = 0, pb = 0;
  for (;; ++d.layer) {
    const size_t ea = a.find('\n', pa), eb = b.find('\n', pb);
    d.a = ea == std::string::npos ? "<none>" : a.substr(pa, ea - pa);
    d.b = eb == std::string::npos ? "<none>" : b.substr(pb, eb - pb);
    if (d.a != d.b) return d;
    pa = ea + 1;
    pb = eb + 1;
  }
}

std::vector<std::string> Model::signature() const {
  std::vector<std::string> sig;
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::string s = layers_[i]->name() + ":" + layers_[i]->type() + shape_str(shapes_[i + 1]);
    for (size_t k = 0; k < params_.size(); ++k)
      if (param_layer_[k] == int(i))
        s += " " + params_[k].spec.name + shape_str(params_[k].spec.shape);
    sig.push_back(s);
  }
  return sig;
}

}  // namespace dpt
