// Installs the GPU's DeviceTimer for train.trace (Note [device spans] in core/trace.h).
#pragma once

namespace dpt::cuda {

// Called once the rank's GPU is selected: from then on spans of device work are timed by CUDA
// events and named by NVTX ranges.
void install_trace_timer();

}  // namespace dpt::cuda
