// Weight initialisers: glorot/he/lecun uniform and truncated normal, zeros and ones.
#include "models/initializers.h"

#include <cmath>

#include "core/error.h"
#include "core/philox.h"

namespace dpt {

bool is_known_initializer(const std::string& init) {
  for (const char* k : {"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform",
                        "he_normal", "lecun_uniform", "lecun_normal", "dirac", "whiten"})
    if (init == k) return true;
  return false;
}

void initialize(float* values, const Shape& shape, const std::string& init, int64_t fan_in,
                int64_t fan_out, uint64_t seed, uint32_t stream, const std::string& where) {
  DPT_CHECK(is_known_initializer(init),
            "unknown initializer '" << init << "' for " << where
                                    << "; expected zeros, ones, glorot_uniform, glorot_normal, "
                                       "he_uniform, he_normal, lecun_uniform, lecun_normal, "
                                       "dirac or whiten (the last two for conv2d kernels)");
  const int64_t n = num_elements(shape);
  if (init == "zeros" || init == "ones" || init == "whiten") {
    DPT_CHECK(init != "whiten" || shape.size() == 4,
              "kernel_initializer whiten is for conv2d kernels, not " << where);
    std::fill(values, values + n, init == "ones" ? 1.0f : 0.0f);
    return;
  }
  PhiloxStream rng(seed, 0, 0, uint32_t(RandomStream::kInit) + stream);
  if (init == "dirac") {
    DPT_CHECK(shape.size() == 4, "kernel_initializer dirac is for conv2d kernels, not " << where);
    const int64_t kh = shape[0], kw = shape[1], cin = shape[2], cout = shape[3];
    const float limit = float(1.0 / std::sqrt(double(std::max<int64_t>(fan_in, 1))));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t o = i % cout;  // HWIO: the output channel varies fastest
      const float r = (2.0f * rng.uniform() - 1.0f) * limit;  // drawn for every i: stable streams
      if (o >= cin) {
        values[i] = r;
        continue;
      }
      const int64_t c = (i / cout) % cin, y = i / (cout * cin * kw), x = (i / (cout * cin)) % kw;
      values[i] = (c == o && y == (kh - 1) / 2 && x == (kw - 1) / 2) ? 1.0f : 0.0f;
    }
    return;
  }
  // Keras' variance scaling: scale / fan, fan = fan_in, or the mean of fan_in and fan_out.
  double fan = double(fan_in);
  double scale = 1.0;
  if (init.rfind("glorot", 0) == 0) fan = (fan_in + fan_out) / 2.0;
  if (init.rfind("he", 0) == 0) scale = 2.0;
  const double variance = scale / std::max(1.0, fan);
  if (init.find("uniform") != std::string::npos) {
    const float limit = float(std::sqrt(3.0 * variance));
    for (int64_t i = 0; i < n; ++i) values[i] = (2.0f * rng.uniform() - 1.0f) * limit;
    return;
  }
  // Truncated normal at two standard deviations; 0.8796... corrects the truncation's variance.
  const float stddev = float(std::sqrt(variance) / 0.87962566103423978);
  for (int64_t i = 0; i < n; ++i) {
    float z;
    do z = rng.normal();
    while (std::fabs(z) > 2.0f);
    values[i] = z * stddev;
  }
}

}  // namespace dpt
