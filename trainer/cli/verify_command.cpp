// verify: every object of each file read once (HDF5 checks the checksums), then the same
// checks training and eval make: structure, finiteness, label range.
#include <cstdio>
#include <memory>

#include "comm/agree.h"
#include "core/exit_codes.h"
#include "data/hdf5_util.h"
#include "data/shards.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/config.h"
#include "trainer/optim/optimizers.h"

namespace dpt::cli {

namespace {

// One file; returns the "ok" line or throws.
std::string verify_one(const std::string& path, std::string* warning) {
  h5::Handle f = h5::open_file(path);
  if (h5::has_attr(f, "model_signature") || h5::exists(f, "/model")) {
    f.reset();
    *warning = verify_checkpoint(path);
    const Config cfg = config_of_checkpoint(path);
    Model model(cfg.model, cfg.name);
    auto opt = make_optimizer(cfg.train.optimizer, model.num_trainable());
    const TrainPosition pos = read_checkpoint(path, model, opt.get());
    return "checkpoint of " + cfg.name + " at epoch " + std::to_string(pos.epoch) + ", step " +
           std::to_string(pos.global_step) + (pos.finished ? ", finished" : "");
  }
  DPT_CHECK(h5::has_attr(f, "split") && h5::has_attr(f, "dataset"),
            "'" << path << "' is neither a dptrain checkpoint nor a data shard");
  const int64_t datasets = h5::verify_all(f, path);
  const std::string dataset = h5::get_attr_string(f, "dataset", path);
  const std::string split = h5::get_attr_string(f, "split", path);
  f.reset();
  const ShardData d = load_shards({path}, dataset);
  if (!d.unchecked_files.empty())
    *warning = "'" + path +
               "' was written before checksums (shard format 1): corruption in it "
               "cannot be detected; re-run dptrain prepare to add them";
  return dataset + " " + split + " file, " + std::to_string(d.n) + " samples, " +
         std::to_string(datasets) + " datasets";
}

}  // namespace

// Prints one line per file ("ok: ..." or the error naming the first bad dataset); returns 0
// if every file is good, kExitError otherwise.
int run_verify(const std::vector<std::string>& files, Communicator& comm) {
  require_one_process(comm, "verify");
  int bad = 0;
  for (const auto& path : files) {
    std::string warning;
    try {
      const std::string what = verify_one(path, &warning);
      std::printf("ok: %s (%s)\n", path.c_str(), what.c_str());
      if (!warning.empty()) std::printf("warning: %s\n", warning.c_str());
    } catch (const std::exception& e) {  // out of memory too: the next file still runs
      std::fflush(stdout);
      report_error("rank 0", explain_exception(e));
      ++bad;
    }
  }
  std::fflush(stdout);
  if (bad > 0)
    std::fprintf(stderr, "dptrain verify: %d of %zu file(s) failed\n", bad, files.size());
  return bad > 0 ? kExitError : kExitOk;
}

void add_verify_command(CLI::App& app, Action& action) {
  auto files = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand(
      "verify", "check checkpoints and data shards (checksums, structure) without training");
  cmd->add_option("files", *files, "checkpoint (ckpt-*.h5) and shard files")->required();
  cmd->callback(
      [files, &action] { action = [files](Communicator& c) { return run_verify(*files, c); }; });
}

}  // namespace dpt::cli
