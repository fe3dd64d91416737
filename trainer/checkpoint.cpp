// Checkpoint files: /model/<layer>/<param>, /optimizer/<state>/<layer>/<param>, /train attributes.
#include "trainer/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "data/hdf5_util.h"
#include "trainer/run_files.h"

namespace dpt {

namespace {

std::string joined_signature(const Model& m) {
  std::string s;
  for (const auto& l : m.signature()) s += l + "\n";
  return s;
}

std::vector<hsize_t> hdims(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

// Every parameter's path in the file, in model order.
std::vector<std::string> param_paths(const Model& m) {
  std::vector<std::string> out;
  for (size_t k = 0; k < m.params().size(); ++k)
    out.push_back(m.layers()[size_t(m.param_layer(k))]->name() + "/" + m.params()[k].spec.name);
  return out;
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

bool is_complete(hid_t f) { return h5::has_attr(f, "complete"); }

// ckpt-*.h5 names in dir (temporary .tmp-* files excluded), oldest first.
std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> all;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("ckpt-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".h5") all.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace

std::string checkpoint_name(int64_t epoch, int64_t global_step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-%04lld-%08lld.h5", (long long)epoch, (long long)global_step);
  return buf;
}

std::string write_checkpoint(const std::string& dir, Model& model, Optimizer& opt,
                             const TrainPosition& pos, const std::string& config_text, int keep) {
  make_directories(dir);
  const int64_t epoch_label = pos.step_in_epoch == 0 ? pos.epoch : pos.epoch + 1;
  const std::string path = dir + "/" + checkpoint_name(epoch_label, pos.global_step);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  model.download();  // GPU values to the host mirrors written below
  opt.download();
  {
    h5::Handle f = h5::create_file(tmp);
    const auto paths = param_paths(model);
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
        h5::write_f32(f, "/optimizer/" + name + "/" + paths[k], hdims(p.spec.shape),
                      t->data() + off);
      }
    }
    h5::Handle tg = h5::create_group(f, "/train");
    h5::set_attr(tg, "epoch", pos.epoch);
    h5::set_attr(tg, "step_in_epoch", pos.step_in_epoch);
    h5::set_attr(tg, "global_step", pos.global_step);
    h5::set_attr(tg, "seed", int64_t(pos.seed));
    h5::set_attr(tg, "rng", std::string("philox4x32-10; key (seed, rank); counter (index, step|epoch, stream)"));
    h5::set_attr(tg, "has_best", pos.has_best);
    h5::set_attr(tg, "since_best", pos.since_best);
    h5::write_f32(f, "/train/epoch_sums_and_best",
                  {4}, std::vector<float>{float(pos.epoch_sums[0]), float(pos.epoch_sums[1]),
                                          float(pos.epoch_sums[2]), float(pos.best_metric)}.data());
    h5::set_attr(f, "format_version", kCheckpointFormatVersion);
    h5::set_attr(f, "world_size", pos.world_size);
    h5::set_attr(f, "config", config_text);
    h5::set_attr(f, "model_signature", joined_signature(model));
    h5::set_attr(f, "complete", int64_t{1});  // last: a file without it is never trusted
    DPT_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0, "cannot flush checkpoint '" << tmp << "'");
  }
  fsync_path(tmp, O_RDONLY);
  DPT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0,
            "cannot rename '" << tmp << "' to '" << path << "': " << std::strerror(errno));
  fsync_path(dir, O_RDONLY | O_DIRECTORY);

  // Keep the newest `keep` checkpoints.
  const auto all = list_checkpoints(dir);
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) std::remove((dir + "/" + all[i]).c_str());
  return path;
}

std::string checkpoint_config(const std::string& path) {
  h5::Handle f = h5::open_file(path);
  DPT_CHECK(is_complete(f), "checkpoint '" << path << "' is incomplete (its writer was "
                                           "interrupted); use an earlier checkpoint");
  return h5::get_attr_string(f, "config", path);
}

TrainPosition read_checkpoint(const std::string& path, Model& model, Optimizer* opt) {
  h5::Handle f = h5::open_file(path);
  DPT_CHECK(is_complete(f), "checkpoint '" << path << "' is incomplete (its writer was "
                                           "interrupted); use an earlier checkpoint");
  const int64_t version = h5::get_attr_int(f, "format_version", path);
  DPT_CHECK(version <= kCheckpointFormatVersion,
            "checkpoint '" << path << "' has format version " << version << ", newer than the "
                           << kCheckpointFormatVersion << " this dptrain reads; upgrade dptrain");
  // Signature: name the first layer that differs.
  const std::string theirs = h5::get_attr_string(f, "model_signature", path);
  const std::string mine = joined_signature(model);
  if (theirs != mine) {
    size_t a = 0, b = 0;
    int layer = 0;
    while (true) {
      const size_t ea = theirs.find('\n', a), eb = mine.find('\n', b);
      const std::string la = ea == std::string::npos ? "<none>" : theirs.substr(a, ea - a);
      const std::string lb = eb == std::string::npos ? "<none>" : mine.substr(b, eb - b);
      if (la != lb)
        DPT_FAIL("checkpoint '" << path << "' is of another model: layer " << layer
                                << " is '" << la << "' there but '" << lb << "' in this config");
      a = ea + 1;
      b = eb + 1;
      ++layer;
    }
  }
  // Read everything into scratch first, so a failure leaves the model as it was.
  const auto paths = param_paths(model);
  std::vector<std::vector<float>> values(model.params().size());
  for (size_t k = 0; k < model.params().size(); ++k) {
    const Param& p = model.params()[k];
    const std::string ds = "/model/" + paths[k];
    DPT_CHECK(h5::dims_of(f, ds, path) == hdims(p.spec.shape),
              "checkpoint '" << path << "' dataset '" << ds << "' has the wrong shape");
    values[k].resize(size_t(p.size()));
    h5::read_f32(f, ds, values[k].data(), path);
  }
  std::vector<std::pair<Tensor*, std::vector<float>>> opt_state;
  int64_t iterations = 0;
  if (opt) {
    iterations = h5::get_attr_int(h5::Handle(H5Gopen2(f, "/optimizer", H5P_DEFAULT), H5Gclose),
                                  "iterations", path);
    for (auto& [name, t] : opt->state()) {
      std::vector<float> buf(size_t(t->size()));
      for (size_t k = 0; k < model.params().size(); ++k) {
        const Param& p = model.params()[k];
        if (!p.grad) continue;
        const std::string ds = "/optimizer/" + name + "/" + paths[k];
        DPT_CHECK(h5::exists(f, ds), "checkpoint '" << path << "' has no dataset '" << ds
                                     << "': it was written with another optimizer; set "
                                        "train.optimizer as in that run");
        h5::read_f32(f, ds, buf.data() + (p.host_value - model.host_weights().data()), path);
      }
      opt_state.emplace_back(t, std::move(buf));
    }
  }
  TrainPosition pos;
  h5::Handle tg(H5Gopen2(f, "/train", H5P_DEFAULT), H5Gclose);
  DPT_CHECK(tg.get() >= 0, "checkpoint '" << path << "' has no /train group");
  pos.epoch = h5::get_attr_int(tg, "epoch", path);
  pos.step_in_epoch = h5::get_attr_int(tg, "step_in_epoch", path);
  pos.global_step = h5::get_attr_int(tg, "global_step", path);
  pos.seed = uint64_t(h5::get_attr_int(tg, "seed", path));
  pos.has_best = h5::get_attr_int(tg, "has_best", path);
  pos.since_best = h5::get_attr_int(tg, "since_best", path);
  pos.world_size = h5::get_attr_int(f, "world_size", path);
  float sums[4];
  h5::read_f32(f, "/train/epoch_sums_and_best", sums, path);
  for (int i = 0; i < 3; ++i) pos.epoch_sums[i] = sums[i];
  pos.best_metric = sums[3];

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

std::string newest_checkpoint(const std::string& dir, std::vector<std::string>* skipped) {
  auto all = list_checkpoints(dir);
  std::reverse(all.begin(), all.end());
  for (const auto& n : all) {
    const std::string p = dir + "/" + n;
    try {
      h5::Handle f = h5::open_file(p);
      if (is_complete(f)) return p;
    } catch (const Error&) {
    }
    if (skipped) skipped->push_back(p);
  }
  return "";
}

}  // namespace dpt
