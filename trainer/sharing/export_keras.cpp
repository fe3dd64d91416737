// Keras 3 export: the Sequential's config.json, model.weights.h5 in Keras' layout, zipped.
#include <minizip/zip.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/files.h"
#include "core/safe_files.h"
#include "data/hdf5_util.h"
#include "models/layers/activation.h"
#include "models/layers/batch_norm.h"
#include "models/layers/conv2d.h"
#include "models/layers/dense.h"
#include "models/layers/dropout.h"
#include "models/layers/pool2d.h"
#include "models/layers/rescaling.h"
#include "trainer/sharing/export.h"

namespace dpt {

namespace {

// Note [keras layout]: what Keras 3's saving_lib writes and reads, studied on keras 3.15 with
// model.save() (docs/SHARING.md): a zip of stored (uncompressed) entries metadata.json,
// config.json and model.weights.h5. The weights file holds, per layer of the Sequential,
// /layers/<layer name>/vars/<i> (the layer's variables in creation order: kernel, bias;
// gamma, beta, moving_mean, moving_variance) and a "name" attribute on each vars group, plus an
// empty /vars for the model itself. The config lists the layers' from_config arguments; only
// keys every Keras 3 release accepts are written, so older 3.x versions load it too.

using Json = nlohmann::ordered_json;  // keys in insertion order, as Keras writes them

Json pair_list(int64_t a, int64_t b) { return Json::array({a, b}); }

Json batch_shape(const Shape& s) {
  Json out = Json::array({nullptr});
  for (int64_t d : s) out.push_back(d);
  return out;
}

Json nulls(Json o, std::initializer_list<const char*> keys) {
  for (const char* k : keys) o[k] = nullptr;
  return o;
}

Json initializer(const std::string& init) {
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
  return {{"module", "keras.initializers"},
          {"class_name", it->second},
          {"config", random ? Json{{"seed", nullptr}} : Json::object()},
          {"registered_name", nullptr}};
}

Json layer_json(const std::string& class_name, Json config, const Shape* build_input) {
  Json o{{"module", "keras.layers"},
         {"class_name", class_name},
         {"config", std::move(config)},
         {"registered_name", nullptr}};
  if (build_input) o["build_config"] = {{"input_shape", batch_shape(*build_input)}};
  return o;
}

// What Conv2D and Dense share: activation, bias, initialisers, no regularisers or constraints.
void add_weight_options(Json& c, Act act, bool use_bias, const std::vector<const Param*>& params) {
  c["activation"] = activation_name(act);
  c["use_bias"] = use_bias;
  c["kernel_initializer"] = initializer(params.at(0)->spec.init);
  c["bias_initializer"] = initializer(use_bias ? params.at(1)->spec.init : "zeros");
  c = nulls(c, {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                "kernel_constraint", "bias_constraint"});
}

// A float32 option as the double that reads back as the same float32.
double real(float v) { return double(v); }

// The from_config arguments of one dptrain layer as its Keras twin.
Json keras_layer(const Model& model, size_t i) {
  const Layer& layer = *model.layers()[i];
  const Shape& in = model.shapes()[i];
  const auto params = layer_params(model, i);
  Json c{{"name", layer.name()}, {"trainable", true}, {"dtype", "float32"}};
  const std::string t = layer.type();
  if (t == "Conv2D") {
    const auto& l = static_cast<const Conv2D&>(layer);
    const Window2D g = l.geometry(in);
    c["filters"] = l.filters();
    c["kernel_size"] = pair_list(g.kh, g.kw);
    c["strides"] = pair_list(g.sh, g.sw);
    c["padding"] = l.padding_same() ? "same" : "valid";
    c["data_format"] = "channels_last";
    c["dilation_rate"] = pair_list(1, 1);
    c["groups"] = 1;
    add_weight_options(c, l.activation(), l.use_bias(), params);
    return layer_json(t, c, &in);
  }
  if (t == "Dense") {
    const auto& l = static_cast<const Dense&>(layer);
    c["units"] = l.units();
    add_weight_options(c, l.activation(), l.use_bias(), params);
    return layer_json(t, c, &in);
  }
  if (t == "MaxPooling2D" || t == "AveragePooling2D") {
    const auto& l = static_cast<const Pool2D&>(layer);
    const Window2D g = l.geometry(in);
    c["pool_size"] = pair_list(g.kh, g.kw);
    c["padding"] = l.padding_same() ? "same" : "valid";
    c["strides"] = pair_list(g.sh, g.sw);
    c["data_format"] = "channels_last";
    return layer_json(t, c, nullptr);
  }
  if (t == "GlobalAveragePooling2D") {
    c["data_format"] = "channels_last";
    c["keepdims"] = false;
    return layer_json(t, c, nullptr);
  }
  if (t == "BatchNormalization") {
    const auto& l = static_cast<const BatchNorm&>(layer);
    c["axis"] = -1;
    c["momentum"] = real(l.momentum());
    c["epsilon"] = real(l.epsilon());
    c["center"] = true;
    c["scale"] = true;
    c["beta_initializer"] = initializer("zeros");
    c["gamma_initializer"] = initializer("ones");
    c["moving_mean_initializer"] = initializer("zeros");
    c["moving_variance_initializer"] = initializer("ones");
    c = nulls(c, {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"});
    c["synchronized"] = false;
    return layer_json(t, c, &in);
  }
  if (t == "Dropout") {
    c["rate"] = real(static_cast<const Dropout&>(layer).rate());
    return layer_json(t, nulls(c, {"seed", "noise_shape"}), nullptr);
  }
  if (t == "Rescaling") {
    const auto& l = static_cast<const Rescaling&>(layer);
    c["scale"] = real(l.scale());
    c["offset"] = real(l.offset());
    return layer_json(t, c, nullptr);
  }
  if (t == "Flatten") {
    c["data_format"] = "channels_last";
    return layer_json(t, c, &in);
  }
  if (t == "Activation") {
    c["activation"] = activation_name(static_cast<const Activation&>(layer).act());
    return layer_json(t, c, nullptr);
  }
  DPT_FAIL(layer.label() << " has no Keras export; docs/SHARING.md lists the layers that do");
}

std::string config_json(const Model& model) {
  const Json shape = batch_shape(model.input_shape());
  Json layers = Json::array();
  layers.push_back(
      {{"module", "keras.layers"},
       {"class_name", "InputLayer"},
       {"config",
        {{"batch_shape", shape}, {"dtype", "float32"}, {"sparse", false}, {"name", "input_layer"}}},
       {"registered_name", nullptr}});
  for (size_t i = 0; i < model.layers().size(); ++i) layers.push_back(keras_layer(model, i));
  const Json config{{"name", model.name()},
                    {"trainable", true},
                    {"dtype", "float32"},
                    {"layers", layers},
                    {"build_input_shape", shape}};
  return Json{{"module", "keras"},
              {"class_name", "Sequential"},
              {"config", config},
              {"registered_name", nullptr},
              {"build_config", {{"input_shape", shape}}}}
      .dump();
}

// model.weights.h5 (Note [keras layout]), written to a temporary file beside the output
// (created exclusively: Note [file safety]) and returned as bytes.
std::string weights_h5(const Model& model, const std::string& path) {
  const std::string tmp = fresh_temporary(path) + ".weights.h5";
  try {
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
    std::remove(tmp.c_str());
    DPT_CHECK(!bytes.empty(), "cannot read back '" << tmp << "'");
    return bytes;
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

// A zip in memory: minizip's file functions over a string.
struct MemoryZip {
  std::string bytes;
  size_t pos = 0;
};
voidpf ZCALLBACK zip_open(voidpf opaque, const void*, int) { return opaque; }
uLong ZCALLBACK zip_read(voidpf, voidpf stream, void* buf, uLong size) {
  auto* z = static_cast<MemoryZip*>(stream);
  const size_t n = std::min<size_t>(size, z->bytes.size() - std::min(z->pos, z->bytes.size()));
  std::memcpy(buf, z->bytes.data() + z->pos, n);
  z->pos += n;
  return uLong(n);
}
uLong ZCALLBACK zip_write(voidpf, voidpf stream, const void* buf, uLong size) {
  auto* z = static_cast<MemoryZip*>(stream);
  if (z->bytes.size() < z->pos + size) z->bytes.resize(z->pos + size);
  std::memcpy(z->bytes.data() + z->pos, buf, size);
  z->pos += size;
  return size;
}
ZPOS64_T ZCALLBACK zip_tell(voidpf, voidpf stream) { return static_cast<MemoryZip*>(stream)->pos; }
long ZCALLBACK zip_seek(voidpf, voidpf stream, ZPOS64_T offset, int origin) {
  auto* z = static_cast<MemoryZip*>(stream);
  const size_t base = origin == ZLIB_FILEFUNC_SEEK_SET   ? 0
                      : origin == ZLIB_FILEFUNC_SEEK_CUR ? z->pos
                                                         : z->bytes.size();
  z->pos = base + size_t(offset);
  return 0;
}
int ZCALLBACK zip_close(voidpf, voidpf) { return 0; }
int ZCALLBACK zip_error(voidpf, voidpf) { return 0; }

// A zip of stored (uncompressed) entries, as Keras writes it (h5py then reads the weights in
// place), built in memory by zlib's minizip so that write_file_atomically can put it in place.
std::string zip_of(const std::string& path,
                   const std::vector<std::pair<std::string, std::string>>& files) {
  MemoryZip mem;
  zlib_filefunc64_def io{zip_open, zip_read,  zip_write, zip_tell,
                         zip_seek, zip_close, zip_error, &mem};
  zipFile z = zipOpen2_64("memory", APPEND_STATUS_CREATE, nullptr, &io);
  DPT_CHECK(z, "cannot start the zip of '" << path << "'");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  zip_fileinfo info{};
  info.tmz_date = {uInt(tm.tm_sec),  uInt(tm.tm_min), uInt(tm.tm_hour),
                   uInt(tm.tm_mday), uInt(tm.tm_mon), uInt(tm.tm_year + 1900)};
  info.external_fa = 0100644u << 16;  // a regular file, rw-r--r--
  bool ok = true;
  for (const auto& [name, bytes] : files) {
    // Method 0: stored, not deflated; zip64 only where an entry needs it.
    ok = ok &&
         zipOpenNewFileInZip64(z, name.c_str(), &info, nullptr, 0, nullptr, 0, nullptr, 0, 0,
                               bytes.size() >= 0xffffffffu) == ZIP_OK &&
         zipWriteInFileInZip(z, bytes.data(), unsigned(bytes.size())) == ZIP_OK &&
         zipCloseFileInZip(z) == ZIP_OK;
  }
  ok = zipClose(z, nullptr) == ZIP_OK && ok;
  DPT_CHECK(ok && !mem.bytes.empty(), "cannot build the zip of '" << path << "'");
  return mem.bytes;
}

}  // namespace

void export_keras(const Model& model, const std::string& path) {
  check_exportable_names(model);
  std::string config;  // unsupported layers fail before any file is written
  try {
    config = config_json(model);
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not UTF-8
    DPT_FAIL("cannot write the Keras config of '" << model.name() << "': " << e.what()
                                                  << "; layer and model names must be UTF-8 text");
  }
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", &tm);
  const std::string metadata = Json{{"keras_version", "3.0.0"}, {"date_saved", date}}.dump();
  const std::string weights = weights_h5(model, path);
  write_file_atomically(path, zip_of(path, {{"metadata.json", metadata},
                                            {"config.json", config},
                                            {"model.weights.h5", weights}}));
}

}  // namespace dpt
