// ONNX export: the Sequential as an opset-17 graph (NHWC input, NCHW inside), built with ONNX's
// generated classes and checked by ONNX's checker and shape inference before it is written.
#include <unistd.h>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <fstream>

#include "core/build_info.h"
#include "core/files.h"
#include "models/layers/activation.h"
#include "models/layers/batch_norm.h"
#include "models/layers/conv2d.h"
#include "models/layers/dense.h"
#include "models/layers/pool2d.h"
#include "models/layers/rescaling.h"
#include "trainer/sharing/export.h"

namespace dpt {

namespace {

constexpr int64_t kIrVersion = 8, kOpset = 17;

struct Attr {
  std::string name;
  onnx::AttributeProto::AttributeType type;
  std::vector<int64_t> ints;  // INT: ints[0]
  float f = 0;
};
Attr ints(const std::string& n, std::vector<int64_t> v) {
  return {n, onnx::AttributeProto::INTS, std::move(v)};
}
Attr one(const std::string& n, int64_t v) { return {n, onnx::AttributeProto::INT, {v}}; }
Attr real(const std::string& n, float v) { return {n, onnx::AttributeProto::FLOAT, {}, v}; }

// Adds nodes and initializers to an onnx::GraphProto; names tensors t0, t1, ... in graph order.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<Attr>& attrs, const std::string& name) {
    const std::string out = "t" + std::to_string(next_++);
    onnx::NodeProto* n = graph_->add_node();
    for (const auto& in : inputs) n->add_input(in);
    n->add_output(out);
    n->set_name(name);
    n->set_op_type(op);
    for (const Attr& a : attrs) {
      onnx::AttributeProto* w = n->add_attribute();
      w->set_name(a.name);
      w->set_type(a.type);
      if (a.type == onnx::AttributeProto::FLOAT) w->set_f(a.f);
      if (a.type == onnx::AttributeProto::INT) w->set_i(a.ints.at(0));
      if (a.type == onnx::AttributeProto::INTS)
        for (int64_t v : a.ints) w->add_ints(v);
    }
    return out;
  }
  std::string initializer(const std::string& name, const std::vector<int64_t>& dims,
                          const std::vector<float>& values) {
    onnx::TensorProto* t = graph_->add_initializer();
    for (int64_t d : dims) t->add_dims(d);
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->set_name(name);
    t->set_raw_data(values.data(), values.size() * sizeof(float));  // little-endian, as ONNX's
    return name;
  }
  // A float tensor (batch "N", dims...) for a graph input or output.
  static void value(onnx::ValueInfoProto* v, const std::string& name, const Shape& dims) {
    v->set_name(name);
    onnx::TypeProto::Tensor* tensor = v->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(onnx::TensorProto::FLOAT);
    onnx::TensorShapeProto* shape = tensor->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
  }

 private:
  onnx::GraphProto* graph_;
  int next_ = 0;
};

std::vector<float> values(const Param& p) { return {p.host_value, p.host_value + p.size()}; }

// HWIO (Keras, dptrain) -> OIHW (ONNX Conv).
std::vector<float> oihw(const Param& k) {
  const Shape& s = k.spec.shape;
  const int64_t kh = s[0], kw = s[1], ci = s[2], co = s[3];
  std::vector<float> out(size_t(k.size()));
  for (int64_t h = 0; h < kh; ++h)
    for (int64_t w = 0; w < kw; ++w)
      for (int64_t i = 0; i < ci; ++i)
        for (int64_t o = 0; o < co; ++o)
          out[size_t(((o * ci + i) * kh + h) * kw + w)] =
              k.host_value[((h * kw + w) * ci + i) * co + o];
  return out;
}

// The activation `act` on x; `channel_axis` is where softmax normalises (the last axis in
// Keras: the channels, axis 1 once the tensor is NCHW).
std::string activation(GraphBuilder& g, Act act, const std::string& x, int64_t channel_axis,
                       const std::string& name) {
  switch (act) {
    case Act::kLinear:
      return x;
    case Act::kRelu:
      return g.node("Relu", {x}, {}, name + "/relu");
    case Act::kSigmoid:
      return g.node("Sigmoid", {x}, {}, name + "/sigmoid");
    case Act::kTanh:
      return g.node("Tanh", {x}, {}, name + "/tanh");
    case Act::kSoftmax:
      return g.node("Softmax", {x}, {one("axis", channel_axis)}, name + "/softmax");
    case Act::kGelu: {  // opset 17 has no Gelu: x * 0.5 * (1 + erf(x / sqrt 2))
      auto scalar = [&](const char* what, float v) { return g.initializer(name + what, {}, {v}); };
      const std::string e = g.node(
          "Erf", {g.node("Mul", {x, scalar("/inv_sqrt2", 0.70710678f)}, {}, name + "/scaled")}, {},
          name + "/erf");
      const std::string half = g.node(
          "Mul",
          {g.node("Add", {e, scalar("/one", 1.0f)}, {}, name + "/cdf2"), scalar("/half", 0.5f)}, {},
          name + "/cdf");
      return g.node("Mul", {x, half}, {}, name + "/gelu");
    }
  }
  return x;
}

void window_attrs(const Window2D& w, std::vector<Attr>* attrs) {
  attrs->push_back(ints("kernel_shape", {w.kh, w.kw}));
  attrs->push_back(ints("strides", {w.sh, w.sw}));
  // Keras' "same" pads the extra row/column at the bottom/right (window.h): explicit pads.
  attrs->push_back(ints("pads", {w.h.pad_lo, w.w.pad_lo, w.h.pad_hi, w.w.pad_hi}));
}

// Adds layer i's nodes after x (NCHW while the per-sample shape has 3 dims); returns the output.
std::string add_layer(GraphBuilder& g, const Model& model, size_t i, std::string x) {
  const Layer& layer = *model.layers()[i];
  const Shape& in = model.shapes()[i];
  const std::string& name = layer.name();
  const auto params = layer_params(model, i);
  const std::string t = layer.type();
  if (t == "Conv2D") {
    const auto& l = static_cast<const Conv2D&>(layer);
    std::vector<Attr> attrs{ints("dilations", {1, 1}), one("group", 1)};
    window_attrs(l.geometry(in), &attrs);
    const Param& k = *params.at(0);
    std::vector<std::string> inputs{
        x, g.initializer(name + "/kernel",
                         {k.spec.shape[3], k.spec.shape[2], k.spec.shape[0], k.spec.shape[1]},
                         oihw(k))};
    if (l.use_bias())
      inputs.push_back(g.initializer(name + "/bias", {l.filters()}, values(*params.at(1))));
    // The original activation: dptrain's relu-behind-pool move (Note [relu after pool]) is
    // exact and internal, so the exported graph is the config's.
    return activation(g, l.activation(), g.node("Conv", inputs, attrs, name), 1, name);
  }
  if (t == "Dense") {
    const auto& l = static_cast<const Dense&>(layer);
    const Param& k = *params.at(0);
    const std::string w = g.initializer(name + "/kernel", k.spec.shape, values(k));
    const std::string y =
        l.use_bias()
            ? g.node("Gemm",
                     {x, w, g.initializer(name + "/bias", {l.units()}, values(*params.at(1)))}, {},
                     name)
            : g.node("MatMul", {x, w}, {}, name);
    return activation(g, l.activation(), y, 1, name);
  }
  if (t == "MaxPooling2D" || t == "AveragePooling2D") {
    const auto& l = static_cast<const Pool2D&>(layer);
    std::vector<Attr> attrs;
    window_attrs(l.geometry(in), &attrs);
    if (t == "MaxPooling2D") return g.node("MaxPool", {x}, attrs, name);
    attrs.push_back(one("count_include_pad", 0));  // Keras averages over the real pixels only
    return g.node("AveragePool", {x}, attrs, name);
  }
  if (t == "GlobalAveragePooling2D")  // (N, C, 1, 1) -> (N, C)
    return g.node("Flatten", {g.node("GlobalAveragePool", {x}, {}, name)}, {one("axis", 1)},
                  name + "/flatten");
  if (t == "BatchNormalization") {
    const auto& l = static_cast<const BatchNorm&>(layer);
    const int64_t c = in.back();
    std::vector<std::string> inputs{x};
    const char* names[] = {"/gamma", "/beta", "/moving_mean", "/moving_variance"};
    for (int k = 0; k < 4; ++k)
      inputs.push_back(g.initializer(name + names[k], {c}, values(*params.at(size_t(k)))));
    return g.node("BatchNormalization", inputs, {real("epsilon", l.epsilon())}, name);
  }
  if (t == "Dropout") return x;  // the identity in inference
  if (t == "Rescaling") {
    const auto& l = static_cast<const Rescaling&>(layer);
    x = g.node("Mul", {x, g.initializer(name + "/scale", {}, {l.scale()})}, {}, name);
    if (l.offset() == 0.0f) return x;
    return g.node("Add", {x, g.initializer(name + "/offset", {}, {l.offset()})}, {},
                  name + "/offset");
  }
  if (t == "Flatten") {
    // Keras flattens NHWC: back from NCHW first, so the next Dense sees Keras' order.
    if (in.size() == 3)
      x = g.node("Transpose", {x}, {ints("perm", {0, 2, 3, 1})}, name + "/to_nhwc");
    return in.size() == 1 ? x : g.node("Flatten", {x}, {one("axis", 1)}, name);
  }
  if (t == "Activation")
    return activation(g, static_cast<const Activation&>(layer).act(), x, in.size() == 3 ? 1 : -1,
                      name);
  DPT_FAIL(layer.label() << " has no ONNX export; docs/SHARING.md lists the layers that do");
}

// ONNX's own checks before anything is written: the checker (schemas, types, topology) and
// shape inference (on a copy: the file keeps only what dptrain wrote), whose logits shape must
// be the model's. A failure is dptrain's bug.
void validate(const onnx::ModelProto& m, const Model& model, const std::string& path) {
  onnx::ModelProto inferred = m;
  try {
    onnx::checker::check_model(m);
    onnx::shape_inference::InferShapes(inferred);
  } catch (const std::exception& e) {
    DPT_FAIL("the ONNX export of '" << model.name() << "' for '" << path
                                    << "' fails ONNX's "
                                       "checker: "
                                    << e.what()
                                    << "; nothing was written. This is a dptrain bug: please "
                                       "report it with the config");
  }
  const auto& dims = inferred.graph().output(0).type().tensor_type().shape().dim();
  DPT_CHECK(dims.size() == 2 && dims[1].dim_value() == model.num_classes(),
            "the ONNX export of '" << model.name() << "' infers a logits shape other than (N, "
                                   << model.num_classes()
                                   << "); nothing was written. This is a dptrain bug");
}

}  // namespace

void export_onnx(const Model& model, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& metadata) {
  check_exportable_names(model);
  onnx::ModelProto m;
  m.set_ir_version(kIrVersion);
  onnx::OperatorSetIdProto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  m.set_producer_name("dptrain");
  m.set_producer_version(DPT_VERSION);
  m.set_doc_string("input: float32 (N, H, W, C) pixels / 255; output: logits (N, classes)");
  onnx::GraphProto* graph = m.mutable_graph();
  graph->set_name(model.name());
  GraphBuilder g(graph);
  GraphBuilder::value(graph->add_input(), "input", model.input_shape());
  std::string x = "input";
  if (model.input_shape().size() == 3)  // NHWC as Keras takes it; ONNX's Conv and pools want NCHW
    x = g.node("Transpose", {x}, {ints("perm", {0, 3, 1, 2})}, "input/to_nchw");
  for (size_t i = 0; i < model.layers().size(); ++i) x = add_layer(g, model, i, x);
  onnx::NodeProto* out = graph->add_node();
  out->add_input(x);
  out->add_output("logits");
  out->set_name("logits");
  out->set_op_type("Identity");
  GraphBuilder::value(graph->add_output(), "logits", model.output_shape());
  for (const auto& [key, value] : metadata) {
    onnx::StringStringEntryProto* kv = m.add_metadata_props();
    kv->set_key(key);
    kv->set_value(value);
  }
  validate(m, model, path);
  write_file_atomically(path, m.SerializeAsString());
}

}  // namespace dpt
