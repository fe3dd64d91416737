// Weight initialisers with Keras' names and formulas (glorot_uniform default for kernels).
#pragma once
#include <cstdint>
#include <string>

#include "core/shape.h"

namespace dpt {

// Fills the values of a parameter of `shape`; draws come from Philox stream (seed, kInit +
// stream) so that every rank computes the same initial weights even before rank 0's broadcast.
// dirac (conv kernels, HWIO): filter o < in_channels is the identity on channel o (a conv that
// starts as a skip connection, airbench's identity initialisation); the other filters are
// uniform in +-1/sqrt(fan_in) (PyTorch's conv default). whiten is data-dependent: zeros here,
// models/whitening.h fills it.
void initialize(float* values, const Shape& shape, const std::string& init, int64_t fan_in,
                int64_t fan_out, uint64_t seed, uint32_t stream, const std::string& where);

bool is_known_initializer(const std::string& init);

}  // namespace dpt
