// dptrain command line: prepare, summary, train, eval, verify, export, plot; errors end the whole job.
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <hdf5.h>
#include <iostream>
#include <thread>

#include "comm/agree.h"
#include "comm/communicator.h"
#include "data/raw_readers.h"
#include "data/shards.h"
#include "models/model.h"
#include "trainer/config.h"
#include "trainer/eval_command.h"
#include "trainer/export.h"
#include "trainer/plot_command.h"
#include "trainer/signals.h"
#include "trainer/trainer.h"
#include "trainer/verify_command.h"
#include "trainer/version.h"

namespace {

// Unless OMP_NUM_THREADS says otherwise, ranks on one node share its cores instead of each
// starting one thread per core (which would oversubscribe them).
void set_threads(const dpt::Communicator& comm) {
  if (std::getenv("OMP_NUM_THREADS")) return;
  cpu_set_t set;
  int cpus = 1;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  // Under a launcher that binds each rank to its own cores, the mask already shows its share.
  const bool bound = cpus < int(std::thread::hardware_concurrency());
  omp_set_num_threads(std::max(1, bound ? cpus : cpus / comm.local_size()));
}

int prepare(const std::string& dataset, const std::string& raw, const std::string& out,
            int64_t shards, uint64_t seed, bool verify) {
  const dpt::RawDataset d = dpt::read_raw_dataset(dataset, raw, verify);
  std::cout << "prepare: " << dataset << ": " << d.train.n << " train and " << d.test.n
            << " test samples of " << d.height << "x" << d.width << "x" << d.channels
            << (verify ? ", checksums verified" : ", checksums NOT verified (--no-verify)") << "\n";
  for (const auto& f : dpt::write_shards(d, out, shards, seed)) std::cout << "  wrote " << f << "\n";
  return 0;
}

// An error only this rank knows of, possibly while others wait in a collective: report it and
// end the whole job (Note [agreeing on errors] in comm/agree.h).
int fail_alone(dpt::Communicator& comm, const std::string& message, int code) {
  dpt::report_error(comm.rank(), message);
  if (comm.size() > 1) comm.abort(code);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any other HDF5 call: no library teardown at exit. After a failed write (a full
  // disk) HDF5 still holds the half-closed file, and its atexit teardown would crash on it;
  // dptrain closes every file it opens itself.
  H5dont_atexit();
  std::unique_ptr<dpt::Communicator> comm;
  try {
    comm = dpt::make_communicator(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "dptrain: error: cannot start MPI: " << e.what() << "\n";
    return 1;
  }
  CLI::App app{"dptrain: data-parallel CNN training on MNIST and CIFAR-10"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return dpt::version_report(); },
                       "print the versions of dptrain and its libraries (for bug reports)");

  std::string dataset, raw_dir, out_dir;
  int64_t shards = 8;
  uint64_t shuffle_seed = 1234;
  bool no_verify = false;
  auto* prep = app.add_subcommand("prepare", "raw official files -> HDF5 shards + test file");
  prep->add_option("dataset", dataset, "mnist | fashion-mnist | cifar10")
      ->required()->check(CLI::IsMember({"mnist", "fashion-mnist", "cifar10"}));
  prep->add_option("--raw", raw_dir, "folder with the official raw files")->required();
  prep->add_option("--out", out_dir, "output folder for the shards")->required();
  prep->add_option("--shards", shards, "number of train shards (>= ranks you will train on)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  prep->add_option("--seed", shuffle_seed, "seed of the global shuffle before sharding");
  prep->add_flag("--no-verify", no_verify, "skip the MD5 comparison with known checksums");

  std::string config_path;
  std::vector<std::string> sets;
  auto* summary = app.add_subcommand("summary", "print a Keras-style model summary");
  summary->add_option("config", config_path, "YAML config")->required();
  summary->add_option("--set", sets, "override a config key: key.sub=value");

  std::string resume;
  bool overwrite = false;
  auto* train = app.add_subcommand("train", "train a model (alone, under mpirun or srun)");
  train->add_option("config", config_path, "YAML config")->required();
  train->add_option("--set", sets, "override a config key: key.sub=value (repeatable)");
  train->add_option("--resume", resume,
                    "auto: continue from the newest complete checkpoint (or start fresh); "
                    "or a checkpoint file");
  train->add_flag("--overwrite", overwrite,
                  "start fresh in a run_dir that holds another run's files, moving them into "
                  "run_dir/overwritten-DATE/");

  std::string checkpoint, data_file, predictions;
  auto* eval = app.add_subcommand("eval", "loss, accuracy, per-class accuracy, confusion matrix");
  eval->add_option("checkpoint", checkpoint, "a checkpoint file (ckpt-*.h5)")->required();
  eval->add_option("--data", data_file, "HDF5 file in the shard layout (default: the test file)");
  eval->add_option("--predictions", predictions, "write index,label,predicted rows to this CSV");
  bool probabilities = false;
  eval->add_flag("--probabilities", probabilities,
                 "add the softmax probability of every class (p0, p1, ...) to --predictions rows");

  std::vector<std::string> verify_files;
  auto* verify = app.add_subcommand(
      "verify", "check checkpoints and data shards (checksums, structure) without training");
  verify->add_option("files", verify_files, "checkpoint (ckpt-*.h5) and shard files")->required();

  std::string keras_out, onnx_out;
  auto* exp = app.add_subcommand("export", "write a checkpoint's model as Keras 3 (.keras) and/or ONNX");
  exp->add_option("checkpoint", checkpoint, "a checkpoint file (ckpt-*.h5)")->required();
  exp->add_option("--keras", keras_out, "write a Keras 3 model (keras.models.load_model) here");
  exp->add_option("--onnx", onnx_out, "write an ONNX model (opset 17, NHWC input) here");

  dpt::PlotOptions plot_opts;
  auto* plot = app.add_subcommand(
      "plot", "curves.png, confusion.png and misclassified.png of a run (needs python3-matplotlib)");
  plot->add_option("run_dir", plot_opts.run_dir, "a run directory (holds metrics.csv)")->required();
  plot->add_option("--checkpoint", plot_opts.checkpoint, "evaluate this checkpoint (default: the run's newest)");
  plot->add_option("--data", plot_opts.data, "HDF5 file to evaluate on (default: the config's test file)");
  plot->add_option("--out", plot_opts.out_dir, "folder for the PNG files (default: RUN_DIR/plots)");
  plot->add_option("--python", plot_opts.python, "Python with matplotlib (default: /usr/bin/python3)");

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
    set_threads(*comm);
    if (*prep) {
      DPT_CHECK(comm->size() == 1, "run dptrain prepare as one process, not under mpirun");
      return prepare(dataset, raw_dir, out_dir, shards, shuffle_seed, !no_verify);
    }
    if (*eval) {
      DPT_CHECK(!probabilities || !predictions.empty(), "--probabilities adds columns to the "
                "--predictions file: give --predictions OUT.csv too");
      return dpt::run_eval(checkpoint, data_file, predictions, *comm, probabilities);
    }
    if (*exp) {
      DPT_CHECK(comm->size() == 1, "run dptrain export as one process, not under mpirun");
      return dpt::run_export(checkpoint, keras_out, onnx_out);
    }
    if (*plot) return dpt::run_plot(plot_opts, *comm);
    if (*verify) {
      DPT_CHECK(comm->size() == 1, "run dptrain verify as one process, not under mpirun");
      return dpt::run_verify(verify_files);
    }
    // Every rank reads the same config: an error in it is agreed on and reported once.
    dpt::Config cfg;
    std::unique_ptr<dpt::Model> model;
    std::unique_ptr<dpt::Trainer> trainer;
    dpt::agree(*comm, [&] {
      cfg = dpt::load_config(config_path, sets);
      if (*summary) model = std::make_unique<dpt::Model>(cfg.model, cfg.name);
      if (*train) trainer = std::make_unique<dpt::Trainer>(cfg, *comm, dpt::TrainOptions{resume, overwrite});
    });
    if (*summary) {
      if (comm->rank() == 0) std::cout << model->summary();
      return 0;
    }
    const dpt::TrainSummary s = trainer->run();  // already_complete: nothing to do, exit 0
    trainer.reset();
    comm.reset();  // MPI_Finalize
    return s.stopped_by_signal ? dpt::kExitStoppedBySignal : dpt::kExitOk;
  } catch (const dpt::AgreedFailure& e) {
    // Every rank took part in the decision and rank 0 has reported it: finalise, no abort.
    comm.reset();
    return e.exit_code();
  } catch (const dpt::Error& e) {
    return fail_alone(*comm, e.what(), e.exit_code());
  } catch (const std::exception& e) {
    return fail_alone(*comm, e.what(), dpt::kExitError);
  }
}
