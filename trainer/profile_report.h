// The per-layer table of dptrain profile, read from the merged train.trace of a short run.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "models/model.h"

namespace dpt {

struct ProfileSetup {
  int ranks = 1, threads = 1;
  int64_t local_batch = 1;   // rank 0's samples per step
  double sgemm_gflops = 0;   // rank 0's fp32 SGEMM rate with its threads
};

// Rank 0's mean per traced step: each layer's forward and backward ms, its share of the step,
// the GFLOP/s of the matrix-product layers and their fraction of the SGEMM rate, the loss,
// optimizer and the waits, and the whole step against the roofline (training FLOPs per step
// at the SGEMM rate). Only spans inside a step count (validation runs forward too).
std::string profile_table(const nlohmann::json& trace, const Model& model, const ProfileSetup& s);

}  // namespace dpt
