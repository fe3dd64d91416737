// Config parsing: every section read through Options, so unknown keys and bad values name their
// line.
#include "trainer/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/options.h"
#include "core/safe_files.h"
#include "core/yaml_input.h"
#include "models/model.h"
#include "trainer/checkpoint.h"

namespace dpt {

void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  DPT_CHECK(eq != std::string::npos && eq > 0,
            "--set expects key=value (e.g. train.epochs=2), got '" << assignment << "'");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  // An empty value would mean "null", i.e. the default, and silently undo an earlier --set.
  DPT_CHECK(text.find_first_not_of(" \t") != std::string::npos,
            "--set " << key << "= has no value; give one (--set " << key
                     << "=VALUE), or leave the key out for its default");
  const YAML::Node value = load_yaml(text, "--set " + key + " value '" + text + "'");
  // `--set train=~` would drop the whole section (and earlier --set values in it) silently.
  DPT_CHECK(!value.IsNull(), "--set " << key << "=" << text
                                      << " is null, which would remove the key and everything "
                                         "below it; give a value, or leave the key out for its "
                                         "default");
  // YAML starts a comment at " #": runs/exp #2 would become runs/exp without a word.
  if (text.find('#') != std::string::npos && value.IsScalar())
    DPT_CHECK(value.Scalar().find('#') != std::string::npos,
              "--set " << key << ": in '" << text << "' the '#' starts a YAML comment, so the "
                       << "value would be '" << value.Scalar() << "'; quote it: --set " << key
                       << "='\"" << text << "\"'");
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const auto dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // Note: YAML::Node's operator= assigns through; reset() rebinds, which walking needs.
  YAML::Node cur;
  cur.reset(root);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next;
    if (cur.IsSequence()) {
      // An index is all digits ("0x" or "1e3" is not 0 or 1000).
      const std::string& p = parts[i];
      DPT_CHECK(
          !p.empty() && p.size() <= 9 && p.find_first_not_of("0123456789") == std::string::npos,
          "--set " << key << ": '" << p << "' is not an index of the list there (0, 1, ...)");
      const size_t idx = std::stoul(p);
      DPT_CHECK(idx < cur.size(), "--set " << key << ": index " << idx << " is out of range");
      next.reset(cur[idx]);
    } else {
      DPT_CHECK(!cur.IsDefined() || cur.IsNull() || cur.IsMap(),
                "--set " << key << ": '" << parts[i] << "' is not a map in the config");
      next.reset(cur[parts[i]]);
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;
  note_override(value, assignment);
}

namespace {

DataConfig parse_data(Options o) {
  DataConfig d;
  d.dataset = o.get_choice("dataset", "", {"mnist", "fashion-mnist", "cifar10"});
  d.dir = o.get_string("dir", "data/" + d.dataset);
  d.validation_split = o.get_double_in("validation_split", 0.0, 0.0, 0.9);
  d.shuffle = o.get_bool("shuffle", true);
  d.prefetch = o.get_int("prefetch", 3, 1);
  d.max_train_samples = o.get_int("max_train_samples", 0, 0);
  d.max_test_samples = o.get_int("max_test_samples", 0, 0);
  Options aug(o.node("augment"), "data.augment");
  d.random_crop_pad = aug.get_int("random_crop", 0, 0);
  d.horizontal_flip = aug.get_bool("horizontal_flip", false);
  d.reflect_fill = aug.get_choice("fill", "zeros", {"zeros", "reflect"}) == "reflect";
  aug.finish();
  o.finish();
  return d;
}

// A one-key map {adam: {lr: ...}} or a bare name (adam).
std::pair<std::string, YAML::Node> one_of(const YAML::Node& n, const std::string& path) {
  if (n.IsScalar()) return {n.Scalar(), YAML::Node()};
  DPT_CHECK(n.IsMap() && n.size() == 1,
            "config key " << path << where(n)
                          << " must be a name or a one-key map like {adam: {lr: 0.001}}");
  return {n.begin()->first.as<std::string>(), n.begin()->second};
}

OptimizerConfig parse_optimizer(const YAML::Node& n) {
  OptimizerConfig c;
  if (!n.IsDefined() || n.IsNull()) return c;
  auto [kind, body] = one_of(n, "train.optimizer");
  DPT_CHECK(kind == "sgd" || kind == "adam" || kind == "adamw",
            "config key train.optimizer" << where(n) << ": unknown optimizer '" << kind
                                         << "'; expected sgd, adam or adamw");
  c.kind = kind == "sgd"    ? OptimizerKind::kSgd
           : kind == "adam" ? OptimizerKind::kAdam
                            : OptimizerKind::kAdamW;
  Options o(body, "train.optimizer." + kind);
  c.lr = o.get_double_in("lr", kind == "sgd" ? 0.01 : 1e-3, 0.0, 1e3);
  c.weight_decay = o.get_double_in("weight_decay", kind == "adamw" ? 0.004 : 0.0, 0.0, 1.0);
  if (kind == "sgd") {
    c.momentum = o.get_double_in("momentum", 0.0, 0.0, 1.0);
    c.nesterov = o.get_bool("nesterov", false);
    c.decay_bias_and_norm = o.get_bool("decay_bias_and_norm", true);
    c.norm_lr_scale = o.get_double_in("norm_lr_scale", 1.0, 1e-3, 1e3);
  } else {
    c.beta1 = o.get_double_in("beta1", 0.9, 0.0, 1.0);
    c.beta2 = o.get_double_in("beta2", 0.999, 0.0, 1.0);
    c.epsilon = o.get_double_in("epsilon", 1e-7, 0.0, 1.0);
    // 0 divides by zero wherever a gradient and its moments are 0, and the run turns to NaN.
    DPT_CHECK(c.epsilon > 0, "config key " << o.at("epsilon")
                                           << " must be greater than 0 "
                                              "(Keras uses 1e-7); 0 makes Adam divide by zero");
    c.decay_bias_and_norm = o.get_bool("decay_bias_and_norm", true);
  }
  o.finish();
  return c;
}

ScheduleConfig parse_schedule(const YAML::Node& n) {
  ScheduleConfig c;
  if (!n.IsDefined() || n.IsNull()) return c;
  auto [kind, body] = one_of(n, "train.lr_schedule");
  DPT_CHECK(kind == "constant" || kind == "step" || kind == "cosine" || kind == "warmup" ||
                kind == "onecycle",
            "config key train.lr_schedule"
                << where(n) << ": unknown schedule '" << kind
                << "'; expected constant, step, cosine, warmup or onecycle");
  c.kind = kind == "constant" ? ScheduleKind::kConstant
           : kind == "step"   ? ScheduleKind::kStep
           : kind == "cosine" ? ScheduleKind::kCosine
           : kind == "warmup" ? ScheduleKind::kWarmup
                              : ScheduleKind::kOneCycle;
  Options o(body, "train.lr_schedule." + kind);
  // onecycle has its own warm-up (pct_start): its warmup_epochs is refused as an unknown key.
  if (kind != "onecycle")
    c.warmup_epochs = o.get_double_in("warmup_epochs", kind == "warmup" ? 1.0 : 0.0, 0.0, 1e6);
  if (kind == "step") {
    c.step_epochs = o.get_double_in("every_epochs", 10, 1e-9, 1e6);
    c.gamma = o.get_double_in("gamma", 0.1, 0.0, 1.0);
  }
  if (kind == "cosine") c.min_lr = o.get_double_in("min_lr", 0.0, 0.0, 1e3);
  if (kind == "onecycle") {
    c.pct_start = o.get_double_in("pct_start", 0.25, 0.0, 1.0);
    c.div_factor = o.get_double_in("div_factor", 25, 1.0, 1e6);
    c.final_div_factor = o.get_double_in("final_div_factor", 1e4, 1.0, 1e9);
  }
  o.finish();
  return c;
}

TrainConfig parse_train(Options o) {
  TrainConfig t;
  t.epochs = o.get_int("epochs", 1, 1);
  t.batch_size = o.get_int("batch_size", 32, 1);
  t.optimizer = parse_optimizer(o.node("optimizer"));
  t.schedule = parse_schedule(o.node("lr_schedule"));
  t.seed = uint64_t(o.get_int("seed", 1, 0));
  t.backend =
      o.get_choice("backend", "cpu", {"cpu", "cuda"}) == "cuda" ? Device::kCuda : Device::kCpu;
  t.log_every_steps = o.get_int("log_every_steps", 50, 1);
  t.bucket_mb = o.get_double_in("bucket_mb", 25, 1e-6, 1e4);
  t.first_bucket_mb = o.get_double_in("first_bucket_mb", 1, 1e-6, 1e4);
  t.overlap = o.get_bool("overlap", true);
  t.nonfinite = o.get_choice("nonfinite", "abort", {"abort", "skip"}) == "skip"
                    ? NonFinitePolicy::kSkip
                    : NonFinitePolicy::kAbort;
  t.collective_timeout_s = o.get_double_in("collective_timeout_s", 300, 0, 1e7);
  t.label_smoothing = o.get_double_in("label_smoothing", 0.0, 0.0, 0.999);
  t.precision = parse_precision(o.get_choice("precision", "fp32", {"fp32", "bf16", "tf32", "auto"}),
                                o.at("precision"));
  t.tensorboard = o.get_bool("tensorboard", true);
  if (o.has("lookahead")) {
    Options la(o.node("lookahead"), "train.lookahead");
    t.lookahead.on = true;
    t.lookahead.every_steps = la.get_int("every_steps", 5, 1);
    t.lookahead.decay = la.get_double_in("decay", 0.7738, 0.0, 1.0);
    t.lookahead.start_epoch = la.get_int("start_epoch", 0, 0);
    t.lookahead.ramp_power = la.get_double_in("ramp_power", 3.0, 0.0, 100.0);
    la.finish();
  }
  if (o.has("trace")) {
    Options tr(o.node("trace"), "train.trace");
    DPT_CHECK(tr.has("steps"), "config key " << o.at("trace")
                                              << " needs steps: [FROM, TO], e.g. {steps: [10, 20]}");
    const auto [from, to] = tr.get_pair("steps", 0, 1);
    DPT_CHECK(from <= to, "config key " << tr.at("steps") << " is [" << from << ", " << to
                                        << "]: the first step must not come after the last");
    // Every rank's events travel to rank 0 and are written at once: keep the window short.
    DPT_CHECK(to - from < 1000, "config key " << tr.at("steps") << " spans " << to - from + 1
                                              << " steps; trace at most 1000 at a time");
    t.trace_from = from;
    t.trace_to = to;
    tr.finish();
  }
  Options es(o.node("early_stopping"), "train.early_stopping");
  const std::string monitor =
      es.get_choice("monitor", "", {"", "accuracy", "loss", "val_accuracy", "val_loss"});
  for (Monitor m : {Monitor::kAccuracy, Monitor::kLoss, Monitor::kValAccuracy, Monitor::kValLoss})
    if (monitor == monitor_name(m)) t.early_stopping.monitor = m;
  t.early_stopping.target = es.get_double("target", 0.0);
  t.early_stopping.patience = es.get_int("patience", 0, 0);
  t.early_stopping.min_delta = es.get_double("min_delta", 0.0);
  es.finish();
  o.finish();
  return t;
}

}  // namespace

const char* monitor_name(Monitor m) {
  switch (m) {
    case Monitor::kNone:
      return "";
    case Monitor::kAccuracy:
      return "accuracy";
    case Monitor::kLoss:
      return "loss";
    case Monitor::kValAccuracy:
      return "val_accuracy";
    case Monitor::kValLoss:
      return "val_loss";
  }
  return "?";
}

namespace {
// Settings that would surprise at run time, refused when a run starts (load_config). The
// config a checkpoint stores is read without them, so a model trained before they existed
// can still be evaluated and exported.
void check_crop_fits(const Config& c);
void check_start_semantics(const YAML::Node& root, const Config& c) {
  // A target, patience or min_delta with no monitor would never stop anything.
  const YAML::Node es = root["train"].IsMap() ? root["train"]["early_stopping"] : YAML::Node();
  if (es.IsMap() && c.train.early_stopping.monitor == Monitor::kNone)
    for (const char* k : {"target", "patience", "min_delta"})
      DPT_CHECK(!es[k].IsDefined() || es[k].IsNull(),
                "config key train.early_stopping."
                    << k << where(es[k])
                    << " is set but train.early_stopping.monitor is not: name the metric to "
                       "watch (accuracy, loss, val_accuracy, val_loss)");
  const Monitor m = c.train.early_stopping.monitor;
  DPT_CHECK((m != Monitor::kValAccuracy && m != Monitor::kValLoss) || c.data.validation_split > 0,
            "train.early_stopping.monitor is " << monitor_name(m)
                                               << " but data.validation_split is 0, so there is "
                                                  "no validation metric: set "
                                                  "data.validation_split (e.g. 0.1) or monitor "
                                               << (m == Monitor::kValLoss ? "loss" : "accuracy"));
  check_crop_fits(c);
}

// A random crop padded by more than the image is mostly padding (or all of it).
void check_crop_fits(const Config& c) {
  const int64_t pad = c.data.random_crop_pad;
  if (pad == 0 || !c.model.IsMap() || !c.model["input"].IsSequence()) return;
  const YAML::Node in = c.model["input"];
  for (size_t i = 0; i + 1 < in.size() && i < 2; ++i) {
    int64_t side = 0;
    try {
      side = in[i].as<int64_t>();
    } catch (const YAML::Exception&) {
      return;  // the model's own parsing names it
    }
    DPT_CHECK(pad < side, "config key data.augment.random_crop is "
                              << pad << ", but the images are " << side
                              << " pixels high/wide: a crop shifted by that much would be "
                                 "padding; use a padding below the image size (e.g. 4)");
  }
}
}  // namespace

Config parse_config(const YAML::Node& root) {
  DPT_CHECK(root.IsMap(), "the config must be a YAML map with name, data, model and train");
  Options top(root, "config");
  Config c;
  c.name = top.get_string("name", "");
  DPT_CHECK(!c.name.empty(), "config key 'name' is required (it names the run directory)");
  // The name becomes runs/<name>: '..' would make the run directory the working directory.
  DPT_CHECK(c.name != "." && c.name != ".." && c.name.find('/') == std::string::npos &&
                std::none_of(c.name.begin(), c.name.end(), [](char ch) { return ch < ' '; }),
            "config key 'name' is '" << c.name
                                     << "': it names the run directory runs/<name>, so it may "
                                        "not be '.', '..', hold a '/' or control characters; "
                                        "set run_dir to choose another folder");
  c.run_dir = top.get_string("run_dir", "runs/" + c.name);
  DPT_CHECK(top.has("data"), "config section 'data' is required");
  c.data = parse_data(Options(top.node("data"), "data"));
  DPT_CHECK(top.has("model"), "config section 'model' is required");
  c.model = top.node("model");
  c.train = parse_train(Options(top.node("train"), "train"));
  Options ck(top.node("checkpoint"), "checkpoint");
  c.checkpoint.dir = ck.get_string("dir", c.run_dir + "/checkpoints");
  c.checkpoint.every_epochs = ck.get_int("every_epochs", 1, 0);
  c.checkpoint.every_steps = ck.get_int("every_steps", 0, 0);
  c.checkpoint.keep = ck.get_int("keep", 3, 1);
  ck.finish();
  Options ev(top.node("eval"), "eval");
  const std::string tta = ev.get_choice("tta", "none", {"none", "flip", "flip_translate"});
  c.eval.tta = tta == "flip"             ? Tta::kFlip
               : tta == "flip_translate" ? Tta::kFlipTranslate
                                         : Tta::kNone;
  c.eval.test_every_epoch = ev.get_bool("test_every_epoch", false);
  ev.finish();
  top.finish();
  YAML::Emitter out;
  out << root;
  c.resolved = std::string(out.c_str()) + "\n";
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  require_regular_file(path, "config file");  // a FIFO would block open() forever
  std::ifstream in(path, std::ios::binary);
  DPT_CHECK(in, "cannot open config file '" << path << "': " << std::strerror(errno));
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));
  DPT_CHECK(text.size() <= kMaxConfigBytes,
            "config file '" << path << "' is larger than " << kMaxConfigBytes / 1024
                            << " KiB; a config is a few KiB of YAML: is it the right file?");
  YAML::Node root = load_yaml(text, "config file '" + path + "'");
  for (const auto& o : overrides) apply_override(root, o);
  try {
    Config c = parse_config(root);
    check_start_semantics(root, c);
    return c;
  } catch (const Error& e) {
    DPT_FAIL(path << ": " << e.what());
  }
}

Config config_of_checkpoint(const std::string& checkpoint) {
  const std::string source = "the config stored in checkpoint '" + checkpoint + "'";
  const YAML::Node root = load_yaml(checkpoint_config(checkpoint), source);
  try {
    Config c = parse_config(root);
    Model(c.model, c.name);  // its layers too, so that their errors name the checkpoint
    return c;
  } catch (const Error& e) {
    DPT_FAIL(source << ": " << e.what());
  } catch (const YAML::Exception& e) {
    DPT_FAIL(source << ": " << e.msg);
  }
}

}  // namespace dpt
