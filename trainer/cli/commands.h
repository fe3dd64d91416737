// The dptrain commands: each registers its subcommand, options and action on the app, one
// function per command as Caffe's tools/caffe.cpp does; main runs the action parsed.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "comm/communicator.h"

namespace dpt::cli {

// What the chosen command does once the whole command line is parsed; returns the exit code.
// Errors are thrown (dpt::Error) and reported by main's error ladder.
using Action = std::function<int(Communicator&)>;

void add_prepare_command(CLI::App& app, Action& action);
void add_summary_command(CLI::App& app, Action& action);
void add_train_command(CLI::App& app, Action& action);
void add_eval_command(CLI::App& app, Action& action);
void add_verify_command(CLI::App& app, Action& action);
void add_export_command(CLI::App& app, Action& action);
void add_plot_command(CLI::App& app, Action& action);
void add_profile_command(CLI::App& app, Action& action);

// Commands that write one output (prepare, plot, export, verify) refuse mpirun; every rank
// agrees on that refusal, so it is reported once and the job ends without MPI_Abort.
void require_one_process(Communicator& comm, const std::string& command);

// `dptrain eval`, also run by `dptrain plot`: data_file is an HDF5 file in the shard layout
// (default: the test file of the checkpoint's config); predictions_csv: optional
// "index,label,predicted" rows in sample order, with probabilities followed by p0..pC-1 (the
// softmax of the logits).
int run_eval(const std::string& checkpoint, const std::string& data_file,
             const std::string& predictions_csv, Communicator& comm, bool probabilities = false);
// The data file run_eval reads by default: the test file of the checkpoint's config.
std::string default_eval_data(const std::string& checkpoint);

// `dptrain --version`: dptrain, oneDNN (and the CPU ISA it dispatches to), MPI, HDF5, and
// CUDA, cuDNN and NCCL when compiled in. Safe to call before MPI is initialised.
std::string version_report();

}  // namespace dpt::cli
