// `dptrain plot`: finds the run's checkpoint, evaluates it, and runs scripts/plot_run.py.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/safe_files.h"
#include "trainer/checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/config.h"

namespace dpt::cli {

namespace {

struct PlotOptions {
  std::string run_dir;
  std::string checkpoint;                   // "": the newest good checkpoint of the run
  std::string data;                         // "": the checkpoint config's test file
  std::string out_dir;                      // "": <run_dir>/plots
  std::string python = "/usr/bin/python3";  // Debian's, where python3-matplotlib installs
};

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Note [plot script]: plotting is matplotlib's job (Debian's python3-matplotlib); C++ has no
// Debian plotting library that draws image grids and annotated heat maps without pulling in
// Python anyway. The script lives in the source tree's scripts/: found beside the binary's
// build folder (build/dptrain -> scripts/), else where CMake saw the sources.
std::string plot_script() {
  char exe[PATH_MAX] = {0};
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, size_t(n));
    dir = dir.substr(0, dir.rfind('/'));
    const std::string beside = dir + "/../scripts/plot_run.py";
    if (exists(beside)) return beside;
  }
  const std::string source = std::string(DPT_SCRIPTS_DIR) + "/plot_run.py";
  DPT_CHECK(exists(source),
            "cannot find scripts/plot_run.py (looked beside the dptrain binary "
            "and in "
                << DPT_SCRIPTS_DIR
                << "); run it yourself: python3 "
                   "scripts/plot_run.py --help");
  return source;
}

// The run's newest good checkpoint: in <run_dir>/checkpoints, else in checkpoint.dir of its
// config.yaml; "" if there is none.
std::string run_checkpoint(const std::string& run_dir) {
  std::vector<std::string> dirs{run_dir + "/checkpoints"};
  if (exists(run_dir + "/config.yaml"))
    dirs.push_back(load_config(run_dir + "/config.yaml").checkpoint.dir);
  for (const auto& dir : dirs) {
    std::vector<std::pair<std::string, std::string>> skipped;
    const std::string found = newest_checkpoint(dir, &skipped);
    for (const auto& [path, why] : skipped)
      std::fprintf(stderr, "dptrain: plot: skipping '%s': %s\n", path.c_str(), why.c_str());
    if (!found.empty()) return found;
  }
  return "";
}

int run_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  DPT_CHECK(pid >= 0, "cannot start '" << args[0] << "': fork failed");
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::fprintf(stderr,
                 "dptrain: error: cannot run '%s': install Debian's python3 and "
                 "python3-matplotlib (scripts/install-deps.sh), or pass --python\n",
                 argv[0]);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Writes curves.png from metrics.csv; with a checkpoint, evaluates it (as dptrain eval, with
// probabilities, into <out>/predictions.csv) and writes confusion.png and misclassified.png,
// by running scripts/plot_run.py. Returns the exit code.
int run_plot(const PlotOptions& o, Communicator& comm) {
  require_one_process(comm, "plot");
  const std::string metrics = o.run_dir + "/metrics.csv";
  DPT_CHECK(exists(metrics), "'" << o.run_dir
                                 << "' has no metrics.csv: give the run directory "
                                    "of a dptrain train run (run_dir, default runs/<name>)");
  const std::string script = plot_script();
  const std::string out = o.out_dir.empty() ? o.run_dir + "/plots" : o.out_dir;
  if (o.out_dir.empty())
    make_own_directory(out, "the plots folder");  // inside the run: a planted link is refused
  else
    make_user_directory(out, "--out");
  const std::string ckpt = o.checkpoint.empty() ? run_checkpoint(o.run_dir) : o.checkpoint;
  std::string title = o.run_dir;
  if (exists(o.run_dir + "/config.yaml"))
    title = load_config(o.run_dir + "/config.yaml").name + " (" + title + ")";
  std::vector<std::string> args{o.python, script, "--metrics", metrics,
                                "--out",  out,    "--title",   title};
  if (ckpt.empty()) {
    std::fprintf(stderr, "dptrain: plot: '%s' has no checkpoint: only curves.png\n",
                 o.run_dir.c_str());
  } else {
    const std::string predictions = out + "/predictions.csv";
    const int rc = run_eval(ckpt, o.data, predictions, comm, true);
    if (rc != 0) return rc;
    args.insert(args.end(), {"--predictions", predictions, "--data",
                             o.data.empty() ? default_eval_data(ckpt) : o.data});
  }
  const int rc = run_child(args);
  DPT_CHECK(rc == 0, "the plot script '" << script << "' failed (exit " << rc
                                         << "); its "
                                            "message is above");
  return 0;
}

}  // namespace

void add_plot_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<PlotOptions>();
  auto* cmd = app.add_subcommand(
      "plot",
      "curves.png, confusion.png and misclassified.png of a run (needs python3-matplotlib)");
  cmd->add_option("run_dir", o->run_dir, "a run directory (holds metrics.csv)")->required();
  cmd->add_option("--checkpoint", o->checkpoint,
                  "evaluate this checkpoint (default: the run's newest)");
  cmd->add_option("--data", o->data, "HDF5 file to evaluate on (default: the config's test file)");
  cmd->add_option("--out", o->out_dir, "folder for the PNG files (default: RUN_DIR/plots)");
  cmd->add_option("--python", o->python, "Python with matplotlib (default: /usr/bin/python3)");
  cmd->callback([o, &action] { action = [o](Communicator& c) { return run_plot(*o, c); }; });
}

}  // namespace dpt::cli
