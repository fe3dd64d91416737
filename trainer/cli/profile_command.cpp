// `dptrain profile`: a short traced run in a scratch run directory, then its per-layer table.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

#include "comm/agree.h"
#include "comm/threads.h"
#include "core/files.h"
#include "models/kernels/cpu/sgemm_rate.h"
#include "trainer/cli/commands.h"
#include "trainer/log.h"
#include "trainer/profile_report.h"
#include "trainer/trainer.h"

namespace dpt::cli {

namespace {

struct ProfileArgs {
  std::string config, trace_out;
  std::vector<std::string> sets;
  int64_t steps = 20, warmup = 5;
};

// Removes the scratch run directory however the profile ends.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

int run_profile(const ProfileArgs& a, Communicator& comm) {
  agree(comm, [&] {
    DPT_CHECK(a.steps >= 1, "--steps " << a.steps << " must be at least 1");
    DPT_CHECK(a.warmup >= 0 && a.warmup <= 100000,
              "--warmup " << a.warmup << " must be 0..100000");
    DPT_CHECK(a.steps <= 1000, "--steps " << a.steps << ": profile at most 1000 steps");
  });
  // Rank 0 makes the scratch directory; every rank learns its name (the resolved configs the
  // ranks compare hold run_dir).
  ScratchDir scratch;
  char dir[4096] = {};
  agree(comm, [&] {
    if (comm.rank() != 0) return;
    std::string t = "/tmp/dptrain-profile-XXXXXX";
    DPT_CHECK(::mkdtemp(t.data()), "cannot make a scratch directory " << t << ": "
                                                                      << std::strerror(errno));
    scratch.path = t;
    std::strncpy(dir, t.c_str(), sizeof dir - 1);
  });
  comm.broadcast(dir, sizeof dir, 0);
  const int64_t from = a.warmup + 1, to = a.warmup + a.steps;
  std::vector<std::string> sets = a.sets;
  for (const std::string& s :
       {"run_dir=" + std::string(dir) + "/run",
        "train.trace={steps: [" + std::to_string(from) + ", " + std::to_string(to) + "]}",
        std::string("checkpoint.every_epochs=0"), std::string("checkpoint.every_steps=0"),
        std::string("train.tensorboard=false"), std::string("train.epochs=100000"),
        std::string("train.early_stopping={}")})
    sets.push_back(s);
  std::unique_ptr<Trainer> trainer;
  Config cfg;
  agree(comm, [&] {
    cfg = load_config(a.config, sets);
    trainer = std::make_unique<Trainer>(cfg, comm, TrainOptions{"", false, true});
  });
  trainer->run();
  trainer.reset();
  // The yardstick, measured now on every rank at once (the ranks share the machine as they
  // did in training): rank 0's rate rates rank 0's layers.
  comm.barrier();
  double rates[2] = {cpu::sgemm_gflops(), 0};
  rates[1] = rates[0];
  comm.allreduce_sum_f64(&rates[1], 1);
  const std::string trace_file = std::string(dir) + "/run/train.trace.json";
  agree(comm, [&] {
    if (comm.rank() == 0)
      DPT_CHECK(::access(trace_file.c_str(), F_OK) == 0,
                "profile: the run ended before step " << to
                                                      << " (a stop signal?); nothing to show");
  });
  if (comm.rank() != 0) return 0;
  const nlohmann::json trace = nlohmann::json::parse(read_file(trace_file));
  const Model model(cfg.model, cfg.name);
  ProfileSetup p;
  p.ranks = comm.size();
  p.threads = threads_per_rank();
  const int64_t b = cfg.train.batch_size;
  p.local_batch = b / p.ranks + (b % p.ranks > 0 ? 1 : 0);
  p.sgemm_gflops = rates[0];
  std::cout << "dptrain profile: " << cfg.name << ", steps " << from << "-" << to
            << " (the mean of " << a.steps << " after " << a.warmup << " warm-up), " << p.ranks
            << " rank(s) x " << p.threads << " thread(s), batch " << p.local_batch
            << " on rank 0\n"
            << "fp32 SGEMM (oneDNN, 2048^3): " << log::format("%.1f", rates[0])
            << " GFLOP/s on rank 0's thread(s), " << log::format("%.1f", rates[1])
            << " on all ranks at once\n";
  if (cfg.train.backend == Device::kCuda)
    std::cout << "(backend cuda: layers, loss and optimizer timed on the GPU by CUDA events; "
                 "waits on the host)\n";
  std::cout << profile_table(trace, model, p);
  if (!a.trace_out.empty()) {
    write_file_atomically(a.trace_out, read_file(trace_file));
    std::cout << "Trace: " << a.trace_out << " (ui.perfetto.dev or chrome://tracing)\n";
  }
  return 0;
}

}  // namespace

void add_profile_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand(
      "profile", "train a few steps and print where each step's time goes, layer by layer");
  cmd->add_option("config", a->config, "YAML config")->required();
  cmd->add_option("--set", a->sets, "override a config key: key.sub=value (repeatable)");
  cmd->add_option("--steps", a->steps, "steps to average (default 20)");
  cmd->add_option("--warmup", a->warmup, "steps run first and not counted (default 5)");
  cmd->add_option("--trace", a->trace_out, "also keep the run's train.trace.json here");
  cmd->callback([a, &action] { action = [a](Communicator& c) { return run_profile(*a, c); }; });
}

}  // namespace dpt::cli
