// Stop signals: SIGTERM and SIGUSR1 ask training to checkpoint at the next step and exit.
#pragma once

namespace dpt {

// Exit code of a run that stopped on a signal after writing its checkpoint (EX_TEMPFAIL):
// "not finished, resume me". slurm/ scripts requeue on it.
constexpr int kExitStoppedBySignal = 75;

void install_stop_signals();
int stop_signal();  // the signal received, or 0

}  // namespace dpt
