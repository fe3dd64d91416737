// train.precision: auto resolved for the device the run uses (Note [precision]).
#include "models/kernels/precision_support.h"

#include "core/error.h"

namespace dpt {

PrecisionChoice resolve_precision(Precision requested, bool on_gpu) {
  if (requested == Precision::kAuto) return on_gpu ? auto_precision_cuda() : auto_precision_cpu();
  check_precision(requested, on_gpu);
  return PrecisionChoice{requested, ""};
}

}  // namespace dpt
