// `dptrain eval`: rebuilds the model from the config stored in the checkpoint, evaluates exactly.
#include "trainer/eval_command.h"

#include <cstdio>
#include <fstream>
#include <iostream>

#include "comm/agree.h"
#include "core/files.h"
#include "data/hdf5_util.h"
#include "data/shards.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"

namespace dpt {

int run_eval(const std::string& checkpoint, const std::string& data_file,
             const std::string& predictions_csv, Communicator& comm, bool probabilities) {
  // Everything before the evaluation reads files only: failures are agreed on and reported once.
  Config cfg;
  std::unique_ptr<Model> model;
  std::string file;
  ShardData data;
  std::string warning;
  const int rank = comm.rank(), world = comm.size();
  agree(comm, [&] {
    cfg = parse_config(YAML::Load(checkpoint_config(checkpoint)));
    model = std::make_unique<Model>(cfg.model, cfg.name);
    read_checkpoint(checkpoint, *model, nullptr, &warning);
    file = data_file.empty() ? cfg.data.dir + "/" + test_file_name(cfg.data.dataset) : data_file;
    std::string dataset;
    {
      h5::Handle f = h5::open_file(file);
      dataset = h5::get_attr_string(f, "dataset", file);
    }
    data = load_shards({file}, dataset);
    DPT_CHECK(Shape({data.height, data.width, data.channels}) == model->input_shape(),
              "'" << file << "' holds " << data.height << "x" << data.width << "x"
                  << data.channels << " images but the checkpoint's model takes "
                  << shape_str(model->input_shape()));
    // Find an unwritable predictions path now, not after the whole evaluation.
    if (rank == 0 && !predictions_csv.empty()) {
      std::ofstream probe(predictions_csv, std::ios::trunc);
      DPT_CHECK(probe, "cannot write the predictions file '" << predictions_csv
                           << "': check that its directory exists and is writable");
    }
  });
  if (rank == 0 && !warning.empty()) std::fprintf(stderr, "dptrain: warning: %s\n", warning.c_str());
  if (rank == 0 && !data.unchecked_files.empty())
    std::fprintf(stderr, "dptrain: warning: '%s' was written before checksums (shard format 1): "
                 "corruption in it cannot be detected\n", file.c_str());
  std::vector<int64_t> idx;
  for (int64_t i = rank * data.n / world; i < (rank + 1) * data.n / world; ++i) idx.push_back(i);
  std::vector<int32_t> predicted;
  std::vector<float> probs;
  const EvalResult r = evaluate(*model, data, idx, 256, comm, &predicted,
                                probabilities ? &probs : nullptr);
  const int64_t classes = model->num_classes();

  if (!predictions_csv.empty()) {
    // Ranks append their slices in rank order, so rows follow the sample order.
    for (int turn = 0; turn < world; ++turn) {
      if (turn == rank) {
        std::ofstream out(predictions_csv, rank == 0 ? std::ios::trunc : std::ios::app);
        DPT_CHECK(out, "cannot write '" << predictions_csv << "'");
        if (rank == 0) {
          out << "index,label,predicted";
          for (int64_t c = 0; probabilities && c < classes; ++c) out << ",p" << c;
          out << "\n";
        }
        char buf[32];
        for (size_t k = 0; k < idx.size(); ++k) {
          out << idx[k] << "," << int(data.labels[size_t(idx[k])]) << "," << predicted[k];
          for (int64_t c = 0; probabilities && c < classes; ++c) {
            std::snprintf(buf, sizeof buf, ",%.7g", double(probs[k * size_t(classes) + size_t(c)]));
            out << buf;
          }
          out << "\n";
        }
        out.flush();
        DPT_CHECK(out, "cannot write '" << predictions_csv << "'"
                                        << write_failure_hint(predictions_csv));
      }
      comm.barrier();
    }
  }
  if (rank != 0) return 0;
  std::printf("checkpoint: %s\ndata: %s (%lld samples)\nloss: %.4f\naccuracy: %.4f\n",
              checkpoint.c_str(), file.c_str(), (long long)r.count, r.loss, r.accuracy);
  const auto per_class = r.per_class_accuracy();
  std::printf("per-class accuracy:\n");
  for (int64_t c = 0; c < r.classes; ++c) std::printf("  %2lld: %.4f\n", (long long)c, per_class[size_t(c)]);
  std::printf("confusion matrix (rows: true class, columns: predicted):\n");
  for (int64_t t = 0; t < r.classes; ++t) {
    std::printf("  ");
    for (int64_t p = 0; p < r.classes; ++p)
      std::printf("%6lld", (long long)r.confusion[size_t(t * r.classes + p)]);
    std::printf("\n");
  }
  return 0;
}

std::string default_eval_data(const std::string& checkpoint) {
  const Config cfg = parse_config(YAML::Load(checkpoint_config(checkpoint)));
  return cfg.data.dir + "/" + test_file_name(cfg.data.dataset);
}

}  // namespace dpt
