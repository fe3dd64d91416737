// Keras 3 export: the Sequential's config.json, model.weights.h5 in Keras' layout, zipped.
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <map>
#include <sstream>

#include "core/files.h"
#include "data/hdf5_util.h"
#include "models/layers/activation.h"
#include "models/layers/batch_norm.h"
#include "models/layers/conv2d.h"
#include "models/layers/dense.h"
#include "models/layers/dropout.h"
#include "models/layers/pool2d.h"
#include "models/layers/rescaling.h"
#include "trainer/export.h"

namespace dpt {

namespace {

// Note [keras layout]: what Keras 3's saving_lib writes and reads, studied on keras 3.15 with
// model.save() (docs/SHARING.md): a zip of stored (uncompressed) entries metadata.json,
// config.json and model.weights.h5. The weights file holds, per layer of the Sequential,
// /layers/<layer name>/vars/<i> (the layer's variables in creation order: kernel, bias;
// gamma, beta, moving_mean, moving_variance) and a "name" attribute on each vars group, plus an
// empty /vars for the model itself. The config lists the layers' from_config arguments; only
// keys every Keras 3 release accepts are written, so older 3.x versions load it too.

std::string q(const std::string& s) {  // a JSON string
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string pair_list(int64_t a, int64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}

std::string batch_shape(const Shape& s) {
  std::string out = "[null";
  for (int64_t d : s) out += ", " + std::to_string(d);
  return out + "]";
}

// A JSON object written in insertion order.
class Obj {
 public:
  Obj& add(const std::string& key, const std::string& json) {
    text_ += (text_.empty() ? "" : ", ") + q(key) + ": " + json;
    return *this;
  }
  Obj& nulls(std::initializer_list<const char*> keys) {
    for (const char* k : keys) add(k, "null");
    return *this;
  }
  std::string str() const { return "{" + text_ + "}"; }

 private:
  std::string text_;
};

std::string initializer(const std::string& init) {
  // dirac and whiten have no Keras class (whiten needs the training images): the file carries
  // the trained weights either way, so such a layer records Keras' default initializer.
  const std::string name = init == "dirac" || init == "whiten" ? "glorot_uniform" : init;
  static const std::map<std::string, std::string> classes = {{"zeros", "Zeros"},
                                                             {"ones", "Ones"},
                                                             {"glorot_uniform", "GlorotUniform"},
                                                             {"glorot_normal", "GlorotNormal"},
                                                             {"he_uniform", "HeUniform"},
                                                             {"he_normal", "HeNormal"},
                                                             {"lecun_uniform", "LecunUniform"},
                                                             {"lecun_normal", "LecunNormal"}};
  const auto it = classes.find(name);
  DPT_CHECK(it != classes.end(), "initializer '" << name << "' has no Keras counterpart");
  const bool random = name != "zeros" && name != "ones";
  return Obj()
      .add("module", q("keras.initializers"))
      .add("class_name", q(it->second))
      .add("config", random ? Obj().add("seed", "null").str() : "{}")
      .add("registered_name", "null")
      .str();
}

std::string layer_json(const std::string& class_name, const Obj& config, const Shape* build_input) {
  Obj o;
  o.add("module", q("keras.layers")).add("class_name", q(class_name)).add("config", config.str());
  o.add("registered_name", "null");
  if (build_input) o.add("build_config", Obj().add("input_shape", batch_shape(*build_input)).str());
  return o.str();
}

// What Conv2D and Dense share: activation, bias, initialisers, no regularisers or constraints.
void add_weight_options(Obj& c, Act act, bool use_bias, const std::vector<const Param*>& params) {
  c.add("activation", q(activation_name(act)))
      .add("use_bias", use_bias ? "true" : "false")
      .add("kernel_initializer", initializer(params.at(0)->spec.init))
      .add("bias_initializer", initializer(use_bias ? params.at(1)->spec.init : "zeros"))
      .nulls({"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
              "bias_constraint"});
}

// The from_config arguments of one dptrain layer as its Keras twin.
std::string keras_layer(const Model& model, size_t i) {
  const Layer& layer = *model.layers()[i];
  const Shape& in = model.shapes()[i];
  const auto params = layer_params(model, i);
  Obj c;
  c.add("name", q(layer.name())).add("trainable", "true").add("dtype", q("float32"));
  const std::string t = layer.type();
  if (t == "Conv2D") {
    const auto& l = static_cast<const Conv2D&>(layer);
    const Window2D g = l.geometry(in);
    c.add("filters", std::to_string(l.filters()))
        .add("kernel_size", pair_list(g.kh, g.kw))
        .add("strides", pair_list(g.sh, g.sw))
        .add("padding", q(l.padding_same() ? "same" : "valid"))
        .add("data_format", q("channels_last"))
        .add("dilation_rate", "[1, 1]")
        .add("groups", "1");
    add_weight_options(c, l.activation(), l.use_bias(), params);
    return layer_json(t, c, &in);
  }
  if (t == "Dense") {
    const auto& l = static_cast<const Dense&>(layer);
    c.add("units", std::to_string(l.units()));
    add_weight_options(c, l.activation(), l.use_bias(), params);
    return layer_json(t, c, &in);
  }
  if (t == "MaxPooling2D" || t == "AveragePooling2D") {
    const auto& l = static_cast<const Pool2D&>(layer);
    const Window2D g = l.geometry(in);
    c.add("pool_size", pair_list(g.kh, g.kw))
        .add("padding", q(l.padding_same() ? "same" : "valid"))
        .add("strides", pair_list(g.sh, g.sw))
        .add("data_format", q("channels_last"));
    return layer_json(t, c, nullptr);
  }
  if (t == "GlobalAveragePooling2D") {
    c.add("data_format", q("channels_last")).add("keepdims", "false");
    return layer_json(t, c, nullptr);
  }
  if (t == "BatchNormalization") {
    const auto& l = static_cast<const BatchNorm&>(layer);
    char num[32];
    auto real = [&](float v) {  // the float32 value, printed so that it reads back the same
      std::snprintf(num, sizeof num, "%.9g", double(v));
      return std::string(num);
    };
    c.add("axis", "-1")
        .add("momentum", real(l.momentum()))
        .add("epsilon", real(l.epsilon()))
        .add("center", "true")
        .add("scale", "true")
        .add("beta_initializer", initializer("zeros"))
        .add("gamma_initializer", initializer("ones"))
        .add("moving_mean_initializer", initializer("zeros"))
        .add("moving_variance_initializer", initializer("ones"))
        .nulls({"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"})
        .add("synchronized", "false");
    return layer_json(t, c, &in);
  }
  if (t == "Dropout") {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.9g", double(static_cast<const Dropout&>(layer).rate()));
    c.add("rate", rate).nulls({"seed", "noise_shape"});
    return layer_json(t, c, nullptr);
  }
  if (t == "Rescaling") {
    char num[64];
    const auto& l = static_cast<const Rescaling&>(layer);
    std::snprintf(num, sizeof num, "%.9g", double(l.scale()));
    c.add("scale", num);
    std::snprintf(num, sizeof num, "%.9g", double(l.offset()));
    c.add("offset", num);
    return layer_json(t, c, nullptr);
  }
  if (t == "Flatten") {
    c.add("data_format", q("channels_last"));
    return layer_json(t, c, &in);
  }
  if (t == "Activation") {
    c.add("activation", q(activation_name(static_cast<const Activation&>(layer).act())));
    return layer_json(t, c, nullptr);
  }
  DPT_FAIL(layer.label() << " has no Keras export; docs/SHARING.md lists the layers that do");
}

std::string config_json(const Model& model) {
  const std::string shape = batch_shape(model.input_shape());
  std::string layers = Obj()
                           .add("module", q("keras.layers"))
                           .add("class_name", q("InputLayer"))
                           .add("config", Obj()
                                              .add("batch_shape", shape)
                                              .add("dtype", q("float32"))
                                              .add("sparse", "false")
                                              .add("name", q("input_layer"))
                                              .str())
                           .add("registered_name", "null")
                           .str();
  for (size_t i = 0; i < model.layers().size(); ++i) layers += ", " + keras_layer(model, i);
  const Obj config = Obj()
                         .add("name", q(model.name()))
                         .add("trainable", "true")
                         .add("dtype", q("float32"))
                         .add("layers", "[" + layers + "]")
                         .add("build_input_shape", shape);
  return Obj()
      .add("module", q("keras"))
      .add("class_name", q("Sequential"))
      .add("config", config.str())
      .add("registered_name", "null")
      .add("build_config", Obj().add("input_shape", shape).str())
      .str();
}

// model.weights.h5 (Note [keras layout]), written to a temporary file and returned as bytes.
std::string weights_h5(const Model& model, const std::string& tmp) {
  {
    h5::Handle f = h5::create_file(tmp);
    for (size_t i = 0; i < model.layers().size(); ++i) {
      const std::string& name = model.layers()[i]->name();
      h5::Handle vars = h5::create_group(f, "layers/" + name + "/vars");
      h5::set_attr(vars, "name", name);
      int k = 0;
      for (const Param* p : layer_params(model, i)) {
        const std::vector<hsize_t> dims(p->spec.shape.begin(), p->spec.shape.end());
        h5::write_f32(vars, std::to_string(k++), dims, p->host_value);
      }
    }
    h5::Handle top = h5::create_group(f, "vars");
    h5::set_attr(top, "name", model.name());
  }
  std::string bytes = read_file(tmp);
  DPT_CHECK(!bytes.empty(), "cannot read back '" << tmp << "'");
  return bytes;
}

// A zip of stored entries, as Keras writes it (h5py then reads the weights in place), built in
// memory so that write_file_atomically can put it in place.
std::string zip_of(const std::string& path,
                   const std::vector<std::pair<std::string, std::string>>& files) {
  size_t size = 65536;  // stored entries: the data plus local and central headers per entry
  for (const auto& [name, bytes] : files) size += bytes.size() + 2 * name.size() + 256;
  std::string zip(size, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  auto fail = [&](const std::string& what) {
    const std::string err = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_write_free(a);
    DPT_FAIL("cannot write '" << path << "' (" << what << "): " << err);
  };
  if (archive_write_set_format_zip(a) != ARCHIVE_OK) fail("zip format");
  if (archive_write_set_options(a, "zip:compression=store") != ARCHIVE_OK) fail("store option");
  if (archive_write_open_memory(a, zip.data(), zip.size(), &used) != ARCHIVE_OK) fail("open");
  for (const auto& [name, bytes] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, la_int64_t(bytes.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, std::time(nullptr), 0);
    const bool ok = archive_write_header(a, e) == ARCHIVE_OK &&
                    archive_write_data(a, bytes.data(), bytes.size()) == la_ssize_t(bytes.size());
    archive_entry_free(e);
    if (!ok) fail(name);
  }
  if (archive_write_close(a) != ARCHIVE_OK) fail("close");
  archive_write_free(a);
  zip.resize(used);
  return zip;
}

}  // namespace

void export_keras(const Model& model, const std::string& path) {
  check_exportable_names(model);
  const std::string config = config_json(model);  // unsupported layers fail before any file
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", &tm);
  const std::string metadata =
      Obj().add("keras_version", q("3.0.0")).add("date_saved", q(date)).str();
  // HDF5 writes to a file: the weights go through a temporary one beside the output.
  const std::string tmp_h5 = path + ".tmp-" + std::to_string(::getpid()) + ".weights.h5";
  std::string weights;
  try {
    weights = weights_h5(model, tmp_h5);
  } catch (...) {
    std::remove(tmp_h5.c_str());
    throw;
  }
  std::remove(tmp_h5.c_str());
  write_file_atomically(path, zip_of(path, {{"metadata.json", metadata},
                                            {"config.json", config},
                                            {"model.weights.h5", weights}}));
}

}  // namespace dpt
