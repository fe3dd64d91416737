// Checkpoint files: /model/<layer>/<param>, /optimizer/<state>/<layer>/<param>, /train attributes.
#include "trainer/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/exit_codes.h"
#include "core/files.h"
#include "core/finite.h"
#include "core/safe_files.h"
#include "data/hdf5_util.h"

namespace dpt {

namespace {

std::vector<hsize_t> hdims(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

// Every parameter's path in the file, in model order.
std::vector<std::string> param_paths(const Model& m) {
  std::vector<std::string> out;
  for (size_t k = 0; k < m.params().size(); ++k)
    out.push_back(m.layers()[size_t(m.param_layer(k))]->name() + "/" + m.params()[k].spec.name);
  return out;
}

bool is_complete(hid_t f) { return h5::has_attr(f, "complete"); }

void check_complete_and_version(hid_t f, const std::string& path, std::string* warning) {
  DPT_CHECK(is_complete(f) || !h5::has_attr(f, "split"),
            "'" << path << "' is a data shard (written by dptrain prepare), not a checkpoint: "
                << "give a checkpoint file (ckpt-*.h5 in the run's checkpoint folder)");
  DPT_CHECK(is_complete(f), "checkpoint '" << path
                                           << "' is incomplete (its writer was "
                                              "interrupted); use an earlier checkpoint");
  const int64_t version = h5::get_attr_int(f, "format_version", path);
  DPT_CHECK(version <= kCheckpointFormatVersion,
            "checkpoint '" << path << "' has format version " << version << ", newer than the "
                           << kCheckpointFormatVersion << " this dptrain reads; upgrade dptrain");
  if (version >= 2)
    h5::require_checksums(f, path,
                          "use another checkpoint of the run (an original, not a "
                          "rewritten copy)");
  if (version < 2 && warning)
    *warning = "checkpoint '" + path + "' was written before checksums (format " +
               std::to_string(version) + "): corruption in it cannot be detected";
}

[[noreturn]] void fail_non_finite(const std::string& path, const std::string& dataset) {
  DPT_FAIL_CODE(kExitNonFinite, "checkpoint '" << path
                                               << "' holds non-finite values (NaN or "
                                                  "infinity) in "
                                               << dataset
                                               << ": the run had diverged when it was written; use "
                                                  "an earlier checkpoint");
}

struct FloatDatasets {
  std::vector<std::string> paths;
};

herr_t collect_float_dataset(hid_t, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<FloatDatasets*>(data)->paths.push_back(name);
  return 0;
}

// Every value under /model and /optimizer is finite (a generic walk: any model, any optimizer).
void check_all_finite(hid_t f, const std::string& path) {
  for (const char* group : {"/model", "/optimizer"}) {
    if (!h5::exists(f, group)) continue;
    FloatDatasets found;
    h5::Handle g = h5::open_group(f, group, path);
    H5Ovisit2(g, H5_INDEX_NAME, H5_ITER_INC, collect_float_dataset, &found, H5O_INFO_BASIC);
    for (const auto& rel : found.paths) {
      const std::string ds = std::string(group) + "/" + rel;
      const auto dims = h5::dims_of(f, ds, path);
      int64_t n = 1;
      for (auto d : dims) n *= int64_t(d);
      std::vector<float> v(size_t(std::max<int64_t>(n, 1)));
      h5::read_f32(f, ds, v.data(), path);
      if (!all_finite(v.data(), n)) fail_non_finite(path, ds);
    }
  }
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> all;
  for (const auto& n : list_directory(dir))
    if (n.rfind("ckpt-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".h5")
      all.push_back(n);
  return all;  // sorted: names sort in training order
}

std::string checkpoint_name(int64_t epoch, int64_t global_step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-%04lld-%08lld.h5", (long long)epoch, (long long)global_step);
  return buf;
}

namespace {

// A diverged state is never written: it would replace good checkpoints in the rotation.
void refuse_non_finite_state(Model& model, Optimizer& opt, const std::vector<std::string>& paths) {
  for (size_t k = 0; k < model.params().size(); ++k)
    if (!all_finite(model.params()[k].host_value, model.params()[k].size()))
      DPT_FAIL_CODE(kExitNonFinite, "refusing to write a checkpoint: /model/"
                                        << paths[k]
                                        << " holds non-finite values (the training diverged)");
  for (auto& [name, t] : opt.state())
    if (!all_finite(t->data(), t->size()))
      DPT_FAIL_CODE(kExitNonFinite, "refusing to write a checkpoint: optimizer state '"
                                        << name
                                        << "' holds non-finite values (the training diverged)");
}

void write_parameters(hid_t f, Model& model, Optimizer& opt,
                      const std::vector<std::string>& paths) {
  for (size_t k = 0; k < model.params().size(); ++k) {
    const Param& p = model.params()[k];
    h5::write_f32(f, "/model/" + paths[k], hdims(p.spec.shape), p.host_value);
  }
  // Optimizer state is laid out like the trainable parameters it belongs to.
  h5::Handle og = h5::create_group(f, "/optimizer");
  h5::set_attr(og, "iterations", opt.iterations());
  for (auto& [name, t] : opt.state()) {
    for (size_t k = 0; k < model.params().size(); ++k) {
      const Param& p = model.params()[k];
      if (!p.grad) continue;
      const int64_t off = p.host_value - model.host_weights().data();
      h5::write_f32(f, "/optimizer/" + name + "/" + paths[k], hdims(p.spec.shape), t->data() + off);
    }
  }
}

void write_position(hid_t f, const TrainPosition& pos) {
  h5::Handle tg = h5::create_group(f, "/train");
  h5::set_attr(tg, "epoch", pos.epoch);
  h5::set_attr(tg, "step_in_epoch", pos.step_in_epoch);
  h5::set_attr(tg, "global_step", pos.global_step);
  h5::set_attr(tg, "seed", int64_t(pos.seed));
  h5::set_attr(tg, "rng",
               std::string("philox4x32-10; key (seed, rank); counter (index, step|epoch, stream)"));
  h5::set_attr(tg, "has_best", pos.has_best);
  h5::set_attr(tg, "since_best", pos.since_best);
  h5::set_attr(tg, "run_id", pos.run_id);
  h5::set_attr(tg, "finished", pos.finished);
  h5::set_attr(tg, "early_stopped", pos.early_stopped);
  h5::set_attr(tg, "skipped_steps", pos.skipped_steps);
  h5::set_attr(tg, "precision", pos.precision);
  h5::write_f32(f, "/train/epoch_sums_and_best", {4},
                std::vector<float>{float(pos.epoch_stats.loss_sum), float(pos.epoch_stats.correct),
                                   float(pos.epoch_stats.count), float(pos.best_metric)}
                    .data());
}

// Keeps the newest `keep` checkpoints of this run; files of other runs are not ours to delete.
void rotate(const std::string& dir, const std::string& run_id, int keep) {
  std::vector<std::string> mine;
  for (const auto& n : list_checkpoints(dir)) {
    const std::string p = dir + "/" + n;
    try {
      h5::Handle f = h5::open_file(p);
      h5::Handle tg = h5::open_group(f, "/train", p);
      const std::string id = h5::has_attr(tg, "run_id") ? h5::get_attr_string(tg, "run_id", p) : "";
      if (id == run_id) mine.push_back(p);
    } catch (const Error&) {
      // Unreadable: not provably ours, so not deleted.
    }
  }
  for (size_t i = 0; i + size_t(keep) < mine.size(); ++i) std::remove(mine[i].c_str());
}

}  // namespace

std::string write_checkpoint(const std::string& dir, Model& model, Optimizer& opt,
                             const TrainPosition& pos, const std::string& config_text, int keep) {
  make_directories(dir);
  const int64_t epoch_label = pos.step_in_epoch == 0 ? pos.epoch : pos.epoch + 1;
  const std::string path = dir + "/" + checkpoint_name(epoch_label, pos.global_step);
  const std::string tmp = fresh_temporary(path);  // created exclusively (Note [file safety])
  model.download();                               // GPU values to the host mirrors written below
  opt.download();
  const auto paths = param_paths(model);
  refuse_non_finite_state(model, opt, paths);
  try {
    h5::Handle f = h5::create_file(tmp);
    write_parameters(f, model, opt, paths);
    write_position(f, pos);
    h5::set_attr(f, "format_version", kCheckpointFormatVersion);
    h5::set_attr(f, "world_size", pos.world_size);
    h5::set_attr(f, "config", config_text);
    h5::set_attr(f, "model_signature", model.signature_text());
    h5::set_attr(f, "complete", int64_t{1});  // last: a file without it is never trusted
    DPT_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0,
              "cannot flush checkpoint '" << tmp << "'" << write_failure_hint(tmp));
    f.reset();
    rename_durably(tmp, path);  // fsyncs the directory after the rename
  } catch (...) {
    std::remove(tmp.c_str());  // a failed write leaves nothing behind (a full disk stays usable)
    throw;
  }
  rotate(dir, pos.run_id, keep);
  return path;
}

std::string checkpoint_run_id(const std::string& path) {
  h5::Handle f = h5::open_file(path);
  h5::Handle tg = h5::open_group(f, "/train", path);
  return h5::has_attr(tg, "run_id") ? h5::get_attr_string(tg, "run_id", path) : "";
}

std::string checkpoint_config(const std::string& path) {
  h5::Handle f = h5::open_file(path);
  check_complete_and_version(f, path, nullptr);
  return h5::get_attr_string(f, "config", path);
}

namespace {

// The names of the optimizer states a checkpoint holds ("m v", "velocity lookahead").
std::string optimizer_states_in(hid_t f, const std::string& path) {
  std::string names;
  h5::Handle og = h5::open_group(f, "/optimizer", path);
  H5G_info_t info{};
  if (H5Gget_info(og, &info) < 0) return names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char name[256] = {0};
    if (H5Lget_name_by_idx(og, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) >
        0)
      names += std::string(names.empty() ? "" : " ") + name;
  }
  return names;
}

// Every /model dataset, checked (shape, finite) into scratch buffers in model order.
std::vector<std::vector<float>> read_parameters(hid_t f, const Model& model,
                                                const std::vector<std::string>& paths,
                                                const std::string& path) {
  std::vector<std::vector<float>> values(model.params().size());
  for (size_t k = 0; k < model.params().size(); ++k) {
    const Param& p = model.params()[k];
    const std::string ds = "/model/" + paths[k];
    DPT_CHECK(h5::dims_of(f, ds, path) == hdims(p.spec.shape),
              "checkpoint '" << path << "' dataset '" << ds << "' has the wrong shape");
    values[k].resize(size_t(p.size()));
    h5::read_f32(f, ds, values[k].data(), path);
    if (!all_finite(values[k].data(), p.size())) fail_non_finite(path, ds);
  }
  return values;
}

// One optimizer state (m, v, velocity, lookahead) laid out like the trainable parameters.
std::vector<float> read_optimizer_state(hid_t f, const std::string& name, const Model& model,
                                        const std::vector<std::string>& paths, int64_t n,
                                        const std::string& path) {
  if (!h5::exists(f, "/optimizer/" + name)) {
    const std::string present = optimizer_states_in(f, path);
    const std::string held =
        " (it holds: " + (present.empty() ? std::string("none") : present) + ")";
    // Lookahead's slow weights are state of train.lookahead, not of the optimizer's rule.
    if (name == "lookahead")
      DPT_FAIL("checkpoint '"
               << path << "' has no lookahead state" << held
               << ": it was written "
                  "by a run without train.lookahead; resume it without train.lookahead, or start a "
                  "new run with it");
    DPT_FAIL("checkpoint '"
             << path << "' has no optimizer state '" << name << "'" << held
             << ": it was written with another optimizer; set train.optimizer as in that run");
  }
  std::vector<float> buf(static_cast<size_t>(n));
  for (size_t k = 0; k < model.params().size(); ++k) {
    const Param& p = model.params()[k];
    if (!p.grad) continue;
    const std::string ds = "/optimizer/" + name + "/" + paths[k];
    DPT_CHECK(h5::exists(f, ds), "checkpoint '"
                                     << path << "' has no dataset '" << ds
                                     << "': the file is damaged; use an earlier checkpoint");
    DPT_CHECK(h5::dims_of(f, ds, path) == hdims(p.spec.shape),
              "checkpoint '" << path << "' dataset '" << ds << "' has the wrong shape");
    float* dst = buf.data() + (p.host_value - model.host_weights().data());
    h5::read_f32(f, ds, dst, path);
    if (!all_finite(dst, p.size())) fail_non_finite(path, ds);
  }
  return buf;
}

TrainPosition read_position(hid_t f, const std::string& path) {
  TrainPosition pos;
  h5::Handle tg = h5::open_group(f, "/train", path);
  pos.epoch = h5::get_attr_int(tg, "epoch", path);
  pos.step_in_epoch = h5::get_attr_int(tg, "step_in_epoch", path);
  pos.global_step = h5::get_attr_int(tg, "global_step", path);
  pos.seed = uint64_t(h5::get_attr_int(tg, "seed", path));
  pos.has_best = h5::get_attr_int(tg, "has_best", path);
  pos.since_best = h5::get_attr_int(tg, "since_best", path);
  // Format 1 files have none of these: the run that wrote them had no id.
  auto int_or = [&](const char* name) {
    return h5::has_attr(tg, name) ? h5::get_attr_int(tg, name, path) : 0;
  };
  pos.run_id = h5::has_attr(tg, "run_id") ? h5::get_attr_string(tg, "run_id", path) : "";
  pos.finished = int_or("finished");
  pos.early_stopped = int_or("early_stopped");
  pos.skipped_steps = int_or("skipped_steps");
  pos.precision =
      h5::has_attr(tg, "precision") ? h5::get_attr_string(tg, "precision", path) : "fp32";
  pos.world_size = h5::get_attr_int(f, "world_size", path);
  float sums[4];
  h5::read_f32(f, "/train/epoch_sums_and_best", sums, path);
  DPT_CHECK(all_finite(sums, 4), "checkpoint '"
                                     << path
                                     << "' holds non-finite values in "
                                        "/train/epoch_sums_and_best; use an earlier checkpoint");
  pos.epoch_stats.loss_sum = sums[0];
  pos.epoch_stats.correct = int64_t(sums[1]);
  pos.epoch_stats.count = int64_t(sums[2]);
  pos.best_metric = sums[3];
  return pos;
}

}  // namespace

TrainPosition read_checkpoint(const std::string& path, Model& model, Optimizer* opt,
                              std::string* warning) {
  h5::Handle f = h5::open_file(path);
  check_complete_and_version(f, path, warning);
  // Signature: name the first layer that differs.
  const SignatureDifference d =
      first_difference(h5::get_attr_string(f, "model_signature", path), model.signature_text());
  DPT_CHECK(!d.differ, "checkpoint '" << path << "' is of another model: layer " << d.layer
                                      << " is '" << d.a << "' there but '" << d.b
                                      << "' in this config");
  // Read everything into scratch first, so a failure leaves the model as it was.
  const auto paths = param_paths(model);
  const auto values = read_parameters(f, model, paths, path);
  std::vector<std::pair<Tensor*, std::vector<float>>> opt_state;
  int64_t iterations = 0;
  if (opt) {
    iterations = h5::get_attr_int(h5::open_group(f, "/optimizer", path), "iterations", path);
    for (auto& [name, t] : opt->state())
      opt_state.emplace_back(t, read_optimizer_state(f, name, model, paths, t->size(), path));
  }
  const TrainPosition pos = read_position(f, path);

  for (size_t k = 0; k < values.size(); ++k)
    std::copy(values[k].begin(), values[k].end(), model.params()[k].host_value);
  model.upload();
  for (auto& [t, buf] : opt_state) std::copy(buf.begin(), buf.end(), t->data());
  if (opt) {
    opt->set_iterations(iterations);
    opt->upload();
  }
  return pos;
}

std::string verify_checkpoint(const std::string& path) {
  h5::Handle f = h5::open_file(path);
  std::string warning;
  check_complete_and_version(f, path, &warning);
  h5::verify_all(f, path);
  check_all_finite(f, path);
  return warning;
}

std::string newest_checkpoint(const std::string& dir,
                              std::vector<std::pair<std::string, std::string>>* skipped) {
  auto all = list_checkpoints(dir);
  std::reverse(all.begin(), all.end());
  for (const auto& n : all) {
    const std::string p = dir + "/" + n;
    try {
      verify_checkpoint(p);
      return p;
    } catch (const std::exception& e) {  // any unreadable file is skipped, never fatal
      if (skipped) skipped->emplace_back(p, explain_exception(e));
    }
  }
  return "";
}

}  // namespace dpt
