// Weight initialisers with Keras' names and formulas (glorot_uniform default for kernels).
#pragma once
#include <cstdint>
#include <string>

namespace dpt {

// Fills n values; draws come from Philox stream (seed, kInit + stream) so that every rank
// computes the same initial weights even before rank 0's broadcast.
void initialize(float* values, int64_t n, const std::string& init, int64_t fan_in,
                int64_t fan_out, uint64_t seed, uint32_t stream, const std::string& where);

bool is_known_initializer(const std::string& init);

}  // namespace dpt
