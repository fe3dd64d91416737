// Stop signals: SIGTERM and SIGUSR1 ask training to checkpoint at the next step and exit.
#pragma once
#include "core/exit_codes.h"

namespace dpt {

// A run that stopped on a signal exits kExitStoppedBySignal (75) after writing its checkpoint:
// "not finished, resume me". slurm/ scripts requeue on it.

void install_stop_signals();
int stop_signal();  // the signal received, or 0

}  // namespace dpt
