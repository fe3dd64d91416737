// dptrain command line: prepare, summary, train and eval subcommands; errors abort every rank.
#include <CLI/CLI.hpp>
#include <iostream>

#include "models/model.h"
#include "trainer/config.h"

int main(int argc, char** argv) {
  CLI::App app{"dptrain: data-parallel CNN training on MNIST and CIFAR-10"};
  app.require_subcommand(1);
  std::string config_path;
  std::vector<std::string> sets;
  auto* summary = app.add_subcommand("summary", "print a Keras-style model summary");
  summary->add_option("config", config_path, "YAML config")->required();
  summary->add_option("--set", sets, "override a config key: key.sub=value");
  CLI11_PARSE(app, argc, argv);
  try {
    if (*summary) {
      const auto cfg = dpt::load_config(config_path, sets);
      dpt::Model model(cfg.model, cfg.name);
      std::cout << model.summary();
    }
  } catch (const std::exception& e) {
    std::cerr << "dptrain: rank 0: error: " << e.what() << "\n";
    return 1;
  }
}
