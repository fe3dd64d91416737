// dptrain's entry point: MPI set-up, the command line, and the error ladder that ends the whole
// job with one message and the documented exit code (Note [agreeing on errors] in comm/agree.h).
#include <hdf5.h>

#include <csignal>
#include <iostream>

#include "comm/agree.h"
#include "comm/threads.h"
#include "core/exit_codes.h"
#include "trainer/cli/commands.h"
#include "trainer/signals.h"

namespace {

// An error only this rank knows of, possibly while others wait in a collective: report it and
// end the whole job.
int fail_alone(dpt::Communicator& comm, const std::string& message, int code) {
  dpt::report_error(comm.rank_name(comm.rank()), message);
  if (comm.size() > 1) comm.abort(code);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any other HDF5 call: no library teardown at exit. After a failed write (a full
  // disk) HDF5 still holds the half-closed file, and its atexit teardown would crash on it;
  // dptrain closes every file it opens itself.
  H5dont_atexit();
  // `dptrain train ... | head`: once head exits, a write to the pipe would kill training
  // without a word; ignored, the console write fails and log.txt and the run go on.
  std::signal(SIGPIPE, SIG_IGN);
  // `dptrain train`: SIGTERM from the first moment (a preempted job may be signalled while
  // MPI still starts) means "checkpoint at the first step and exit 75", never a silent 143.
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-') {
      if (std::string(argv[i]) == "train") dpt::install_stop_signals();
      break;
    }
  std::unique_ptr<dpt::Communicator> comm;
  try {
    comm = dpt::make_communicator(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "dptrain: error: cannot start MPI: " << e.what() << "\n";
    return dpt::kExitError;
  }
  CLI::App app{"dptrain: data-parallel CNN training on MNIST and CIFAR-10"};
  app.require_subcommand(1);
  app.set_version_flag(
      "--version", [] { return dpt::cli::version_report(); },
      "print the versions of dptrain and its libraries (for bug reports)");
  dpt::cli::Action action;
  for (auto add :
       {dpt::cli::add_prepare_command, dpt::cli::add_summary_command, dpt::cli::add_train_command,
        dpt::cli::add_eval_command, dpt::cli::add_verify_command, dpt::cli::add_export_command,
        dpt::cli::add_plot_command, dpt::cli::add_profile_command})
    add(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and --version exit 0; a usage error exits kExitUsage. Every rank parses the same
    // command line, so rank 0 alone speaks.
    if (comm->rank() == 0) {
      if (e.get_exit_code() == 0) {
        app.exit(e);
      } else {
        std::cerr << "dptrain: error: " << e.what() << "\n"
                  << "Run with --help for the commands and options.\n";
      }
    }
    return e.get_exit_code() == 0 ? dpt::kExitOk : dpt::kExitUsage;
  }
  try {
    // An MPMD launch (train on one rank, eval on another) would wait forever in collectives
    // the other command never reaches: the ranks agree on the command first.
    dpt::check_same_on_all_ranks(*comm, app.get_subcommands().front()->get_name() + "\n",
                                 "dptrain command", "Every rank must run the same command");
    dpt::share_cores_among_local_ranks(*comm);
    const int code = action(*comm);
    comm.reset();  // MPI_Finalize
    return code;
  } catch (const dpt::AgreedFailure& e) {
    // Every rank took part in the decision and rank 0 has reported it: finalise, no abort.
    comm.reset();
    return e.exit_code();
  } catch (const dpt::Error& e) {
    return fail_alone(*comm, e.what(), e.exit_code());
  } catch (const std::exception& e) {
    return fail_alone(*comm, dpt::explain_exception(e), dpt::kExitError);
  }
}
