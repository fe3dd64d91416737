// Exit codes of dptrain: one table (docs/FAULTS.md) that every path and the Slurm scripts follow.
#pragma once

namespace dpt {

enum ExitCode : int {
  kExitOk = 0,                // finished (or --resume auto on a run that was already complete)
  kExitError = 1,             // bad input, corrupt or missing file, I/O failure, internal error
  kExitUsage = 2,             // the command line itself is wrong (unknown option, bad value)
  kExitNonFinite = 3,         // the loss or a gradient became NaN/Inf (train.nonfinite: abort)
  kExitStalled = 4,           // a rank did not reach a collective within train.collective_timeout_s
  kExitStoppedBySignal = 75,  // SIGTERM/SIGUSR1: checkpoint written, resume to finish (EX_TEMPFAIL)
};

}  // namespace dpt
