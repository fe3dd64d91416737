// `dptrain train` and `dptrain summary`: a config (with --set overrides) trained, or its model
// tabled.
#include <iostream>
#include <memory>

#include "comm/agree.h"
#include "core/exit_codes.h"
#include "trainer/cli/commands.h"
#include "trainer/trainer.h"

namespace dpt::cli {

namespace {

struct ConfigArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string resume;
  bool overwrite = false;
};

int run_summary(const ConfigArgs& a, Communicator& comm) {
  // Every rank reads the same config: an error in it is agreed on and reported once.
  std::unique_ptr<Model> model;
  agree(comm, [&] {
    const Config cfg = load_config(a.config, a.sets);
    model = std::make_unique<Model>(cfg.model, cfg.name);
  });
  if (comm.rank() == 0) std::cout << model->summary();
  return 0;
}

int run_train(const ConfigArgs& a, Communicator& comm) {
  // --overwrite starts fresh, --resume continues: together they would silently mean one.
  agree(comm, [&] {
    DPT_CHECK(!a.overwrite || a.resume.empty(),
              "--overwrite and --resume " << a.resume
                                          << " contradict each other: --resume continues the "
                                             "run in run_dir, --overwrite moves it aside to "
                                             "start fresh; give one of them");
  });
  std::unique_ptr<Trainer> trainer;
  agree(comm, [&] {
    trainer = std::make_unique<Trainer>(load_config(a.config, a.sets), comm,
                                        TrainOptions{a.resume, a.overwrite});
  });
  const TrainSummary s = trainer->run();  // already_complete: nothing to do, exit 0
  return s.stopped_by_signal ? kExitStoppedBySignal : kExitOk;
}

}  // namespace

void add_summary_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<ConfigArgs>();
  auto* cmd = app.add_subcommand("summary", "print a Keras-style model summary");
  cmd->add_option("config", a->config, "YAML config")->required();
  cmd->add_option("--set", a->sets, "override a config key: key.sub=value");
  cmd->callback([a, &action] { action = [a](Communicator& c) { return run_summary(*a, c); }; });
}

void add_train_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<ConfigArgs>();
  auto* cmd = app.add_subcommand("train", "train a model (alone, under mpirun or srun)");
  cmd->add_option("config", a->config, "YAML config")->required();
  cmd->add_option("--set", a->sets, "override a config key: key.sub=value (repeatable)");
  cmd->add_option("--resume", a->resume,
                  "auto: continue from the newest complete checkpoint (or start fresh); "
                  "or a checkpoint file");
  cmd->add_flag("--overwrite", a->overwrite,
                "start fresh in a run_dir that holds another run's files, moving them into "
                "run_dir/overwritten-DATE/");
  cmd->callback([a, &action] { action = [a](Communicator& c) { return run_train(*a, c); }; });
}

}  // namespace dpt::cli
