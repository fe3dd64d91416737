// `dptrain eval`: loss, accuracy, per-class accuracy and confusion matrix of a checkpoint.
#pragma once
#include <string>

#include "comm/communicator.h"

namespace dpt {

// data_file: an HDF5 file in the shard layout (default: the test file of the checkpoint's
// config). predictions_csv: optional "index,label,predicted" rows, written in sample order;
// with probabilities, followed by p0..pC-1, the softmax of the logits (what `dptrain plot`
// and the export tests read).
int run_eval(const std::string& checkpoint, const std::string& data_file,
             const std::string& predictions_csv, Communicator& comm, bool probabilities = false);

// The data file run_eval reads by default: the test file of the checkpoint's config.
std::string default_eval_data(const std::string& checkpoint);

}  // namespace dpt
