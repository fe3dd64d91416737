// Collective error agreement: ranks decide together whether a phase failed, and rank 0 reports it.
#pragma once
#include <functional>

#include "comm/communicator.h"
#include "core/error.h"

namespace dpt {

// Note [agreeing on errors]: an error in a phase that contains no collective (reading the
// config, the shards, a checkpoint; writing a run file) is caught, and every rank then takes
// part in agree(), one small all-reduce that every rank reaches. If any rank failed, the
// ranks' messages go to rank 0, which prints each distinct one once ("dptrain: rank 1: error:
// ... (also on rank 2)"), and every rank throws AgreedFailure; main() then finalises MPI and
// exits with the error's code instead of calling MPI_Abort, whose teardown races are what
// buried dptrain's message under Open MPI's noise. An error inside a collective phase (a rank
// dies mid-step) still ends the job with MPI_Abort: there, the other ranks cannot agree.
class AgreedFailure : public Error {
 public:
  AgreedFailure(const std::string& what, int code) : Error(what, code) {}
};

// Runs phase() on every rank, then agrees on its outcome. Returns normally only if no rank
// failed. With one rank, the original error propagates unchanged.
void agree(Communicator& comm, const std::function<void()>& phase);

// Collective: every rank's text (the resolved config, the data manifest) must equal rank 0's;
// otherwise each differing rank fails naming the first differing line, then fix. Ranks that
// disagree on the config would otherwise exchange buffers of different sizes.
void check_same_on_all_ranks(Communicator& comm, const std::string& mine, const std::string& what,
                             const std::string& fix);

// Prints "dptrain: WHO: error: MSG" to stderr in one write (lines of ranks never interleave);
// WHO is Communicator::rank_name: "rank 1", or "rank 1 (node2)" across hosts.
void report_error(const std::string& who, const std::string& message,
                  const std::string& suffix = "");

}  // namespace dpt
