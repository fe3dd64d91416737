// `dptrain plot`: curves, confusion matrix and worst test images of a run, as PNG files.
#pragma once
#include <string>

#include "comm/communicator.h"

namespace dpt {

struct PlotOptions {
  std::string run_dir;
  std::string checkpoint;                   // "": the newest good checkpoint of the run
  std::string data;                         // "": the checkpoint config's test file
  std::string out_dir;                      // "": <run_dir>/plots
  std::string python = "/usr/bin/python3";  // Debian's, where python3-matplotlib installs
};

// Writes curves.png from metrics.csv; with a checkpoint, evaluates it (as dptrain eval, with
// probabilities, into <out>/predictions.csv) and writes confusion.png and misclassified.png,
// by running scripts/plot_run.py. Returns the exit code.
int run_plot(const PlotOptions& options, Communicator& comm);

}  // namespace dpt
