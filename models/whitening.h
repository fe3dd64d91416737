// Patch-whitening initialisation of the first conv layer from training images (airbench).
#pragma once
#include <cstdint>
#include <string>

#include "models/model.h"

namespace dpt {

// Note [whitening]: a conv2d whose kernel_initializer is `whiten` (the first layer; it sees the
// images) gets, from the kh x kw x C patches of up to max_images images (uint8 NHWC, scaled by
// 1/255 as the batches are), the eigenvectors v_j of their covariance, largest eigenvalue
// first: filter j is v_j / sqrt(lambda_j + eps) and filter j + F/2 its negative (so that a
// following relu/gelu loses nothing), F = filters, F/2 <= kh*kw*C. eps is relative: eps_rel
// times the mean eigenvalue. With a bias the patches are also centred (bias = -w . mean), so the
// layer outputs decorrelated, unit-variance, zero-mean channels: the net starts from whitened
// input (Keller Jordan's airbench; "patch whitening" in Coates & Ng 2011). Returns a line for
// the log saying what was measured, or "" when no layer asks for it.
std::string whiten_from_images(Model& model, const uint8_t* images, int64_t n, int64_t height,
                               int64_t width, int64_t channels, int64_t max_images = 5000,
                               double eps_rel = 5e-4);

// The symmetric eigen-decomposition LAPACK's dsyev computes: a is n x n (row-major, both
// triangles), replaced by the eigenvectors as columns; values ascending.
void symmetric_eigen(double* a, double* values, int n);

}  // namespace dpt
