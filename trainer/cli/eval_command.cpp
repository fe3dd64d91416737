// `dptrain eval`: rebuilds the model from the config stored in the checkpoint, evaluates exactly.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "comm/agree.h"
#include "core/files.h"
#include "core/safe_files.h"
#include "data/hdf5_util.h"
#include "data/shards.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"

namespace dpt::cli {

namespace {

// What eval reads before it evaluates: the checkpoint's model and the data file.
struct EvalInputs {
  Config cfg;
  std::unique_ptr<Model> model;
  std::string file, warning;
  ShardData data;
};

// Everything before the evaluation reads files only: failures are agreed on and reported once.
EvalInputs load_inputs(const std::string& checkpoint, const std::string& data_file,
                       const std::string& predictions_csv, Communicator& comm) {
  EvalInputs in;
  agree(comm, [&] {
    in.cfg = config_of_checkpoint(checkpoint);
    in.model = std::make_unique<Model>(in.cfg.model, in.cfg.name);
    read_checkpoint(checkpoint, *in.model, nullptr, &in.warning);
    in.file =
        data_file.empty() ? in.cfg.data.dir + "/" + test_file_name(in.cfg.data.dataset) : data_file;
    std::string dataset;
    {
      h5::Handle f = h5::open_file(in.file);
      dataset = h5::get_attr_string(f, "dataset", in.file);
    }
    in.data = load_shards({in.file}, dataset);
    DPT_CHECK(Shape({in.data.height, in.data.width, in.data.channels}) == in.model->input_shape(),
              "'" << in.file << "' holds " << in.data.height << "x" << in.data.width << "x"
                  << in.data.channels << " images but the checkpoint's model takes "
                  << shape_str(in.model->input_shape()));
    // Find an unwritable predictions path now, not after the whole evaluation, without
    // touching the file itself: it is replaced only once complete.
    if (comm.rank() == 0 && !predictions_csv.empty()) {
      check_output_path(predictions_csv, "--predictions", {checkpoint, in.file});
      const size_t slash = predictions_csv.rfind('/');
      const std::string dir =
          slash == std::string::npos ? "." : predictions_csv.substr(0, slash + 1);
      DPT_CHECK(::access(dir.c_str(), W_OK) == 0,
                "cannot write the predictions file '"
                    << predictions_csv << "': check that its directory exists and is writable");
    }
  });
  return in;
}

// Each rank's rows reach rank 0 in rank order (no shared filesystem needed), which writes them
// to a temporary file and renames it over csv: readers see the old file or the complete new one.
void write_predictions(const std::string& csv, const EvalInputs& in,
                       const std::vector<int64_t>& idx, const std::vector<int32_t>& predicted,
                       const std::vector<float>* probs, Communicator& comm) {
  const int64_t classes = in.model->num_classes();
  std::string rows;
  char buf[32];
  for (size_t k = 0; k < idx.size(); ++k) {
    rows += std::to_string(idx[k]) + "," + std::to_string(int(in.data.labels[size_t(idx[k])])) +
            "," + std::to_string(predicted[k]);
    for (int64_t c = 0; probs && c < classes; ++c) {
      std::snprintf(buf, sizeof buf, ",%.7g", double((*probs)[k * size_t(classes) + size_t(c)]));
      rows += buf;
    }
    rows += "\n";
  }
  std::string all = "index,label,predicted";
  for (int64_t c = 0; probs && c < classes; ++c) all += ",p" + std::to_string(c);
  all += "\n";
  for (int r = 0; r < comm.size(); ++r) {
    uint64_t len = rows.size();
    comm.broadcast(&len, sizeof len, r);
    std::string theirs(len, '\0');
    if (comm.rank() == r) theirs = rows;
    if (len > 0) comm.broadcast(theirs.data(), len, r);
    if (comm.rank() == 0) all += theirs;
  }
  agree(comm, [&] {
    if (comm.rank() == 0) write_file_atomically(csv, all);
  });
}

void print_report(const std::string& checkpoint, const std::string& file, const EvalResult& r) {
  std::printf("checkpoint: %s\ndata: %s (%lld samples)\nloss: %.4f\naccuracy: %.4f\n",
              checkpoint.c_str(), file.c_str(), (long long)r.count, r.loss, r.accuracy);
  const auto per_class = r.per_class_accuracy();
  std::printf("per-class accuracy:\n");
  for (int64_t c = 0; c < r.classes; ++c)
    std::printf("  %2lld: %.4f\n", (long long)c, per_class[size_t(c)]);
  std::printf("confusion matrix (rows: true class, columns: predicted):\n");
  for (int64_t t = 0; t < r.classes; ++t) {
    std::printf("  ");
    for (int64_t p = 0; p < r.classes; ++p)
      std::printf("%6lld", (long long)r.confusion[size_t(t * r.classes + p)]);
    std::printf("\n");
  }
}

struct EvalArgs {
  std::string checkpoint, data_file, predictions;
  bool probabilities = false;
};

}  // namespace

int run_eval(const std::string& checkpoint, const std::string& data_file,
             const std::string& predictions_csv, Communicator& comm, bool probabilities) {
  check_same_on_all_ranks(comm,
                          "checkpoint: " + checkpoint + "\ndata: " + data_file +
                              "\npredictions: " + predictions_csv + "\n",
                          "eval arguments", "Every rank must evaluate the same files");
  const EvalInputs in = load_inputs(checkpoint, data_file, predictions_csv, comm);
  const int rank = comm.rank(), world = comm.size();
  if (rank == 0 && !in.warning.empty())
    std::fprintf(stderr, "dptrain: warning: %s\n", in.warning.c_str());
  if (rank == 0 && !in.data.unchecked_files.empty())
    std::fprintf(stderr,
                 "dptrain: warning: '%s' was written before checksums (shard format 1): "
                 "corruption in it cannot be detected\n",
                 in.file.c_str());
  std::vector<int64_t> idx;
  for (int64_t i = rank * in.data.n / world; i < (rank + 1) * in.data.n / world; ++i)
    idx.push_back(i);
  std::vector<int32_t> predicted;
  std::vector<float> probs;
  const EvalResult r =
      evaluate(*in.model, in.data, idx, 256, comm, &predicted, probabilities ? &probs : nullptr);
  if (!predictions_csv.empty())
    write_predictions(predictions_csv, in, idx, predicted, probabilities ? &probs : nullptr, comm);
  if (rank == 0) print_report(checkpoint, in.file, r);
  return 0;
}

std::string default_eval_data(const std::string& checkpoint) {
  const Config cfg = config_of_checkpoint(checkpoint);
  return cfg.data.dir + "/" + test_file_name(cfg.data.dataset);
}

void add_eval_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "loss, accuracy, per-class accuracy, confusion matrix");
  cmd->add_option("checkpoint", a->checkpoint, "a checkpoint file (ckpt-*.h5)")->required();
  cmd->add_option("--data", a->data_file, "HDF5 file in the shard layout (default: the test file)");
  cmd->add_option("--predictions", a->predictions, "write index,label,predicted rows to this CSV");
  cmd->add_flag("--probabilities", a->probabilities,
                "add the softmax probability of every class (p0, p1, ...) to --predictions rows");
  cmd->callback([a, &action] {
    action = [a](Communicator& c) {
      agree(c, [&] {  // every rank refuses alike: said once, no MPI_Abort
        DPT_CHECK(!a->probabilities || !a->predictions.empty(),
                  "--probabilities adds columns to the "
                  "--predictions file: give --predictions OUT.csv too");
      });
      return run_eval(a->checkpoint, a->data_file, a->predictions, c, a->probabilities);
    };
  });
}

}  // namespace dpt::cli
