// What the Fletcher32 checksums cost: checkpoint write and a full read of the CIFAR-10 train
// shards, each with and without the filter, in one run (medians of repeated timings).
// Usage: build/dpt_bench_checksums RAW_CIFAR10_DIR [REPEATS]   (prints a Markdown table)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/cpu_info.h"
#include "data/hdf5_util.h"
#include "data/raw_readers.h"
#include "data/shards.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/optim/optimizers.h"

namespace {

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s RAW_CIFAR10_DIR [REPEATS]\n", argv[0]);
    return 2;
  }
  H5dont_atexit();
  const std::string raw_dir = argv[1];
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string tmp = std::filesystem::temp_directory_path() / "dpt-bench-checksums";
  std::filesystem::remove_all(tmp);
  std::filesystem::create_directories(tmp);
  const std::string source = std::string(DPT_SOURCE_DIR);

  // Checkpoint: cifar10_cnn with Adam (parameters + two moments, 6.6 MB).
  const dpt::Config cfg = dpt::load_config(source + "/configs/cifar10_cnn.yaml");
  dpt::Model model(cfg.model, cfg.name);
  model.initialize(1);
  auto opt = dpt::make_optimizer(cfg.train.optimizer, model.num_trainable());
  dpt::TrainPosition pos;
  pos.run_id = "bench";
  double write[2], read_ckpt[2], read_shards[2];
  for (int with = 0; with < 2; ++with) {
    dpt::h5::set_checksums_for_benchmark(with == 1);
    const std::string dir = tmp + (with ? "/ckpt-on" : "/ckpt-off");
    std::vector<double> w, r;
    for (int i = 0; i < repeats; ++i) {
      pos.global_step = i + 1;
      std::string path;
      w.push_back(seconds_of(
          [&] { path = dpt::write_checkpoint(dir, model, *opt, pos, cfg.resolved, 1); }));
      r.push_back(seconds_of([&] { dpt::read_checkpoint(path, model, opt.get()); }));
    }
    write[with] = median(w);
    read_ckpt[with] = median(r);
  }

  // Shards: the 50,000 CIFAR-10 training images in 8 shards, read as training reads them.
  const dpt::RawDataset raw = dpt::read_raw_dataset("cifar10", raw_dir, false);
  for (int with = 0; with < 2; ++with) {
    dpt::h5::set_checksums_for_benchmark(with == 1);
    const std::string dir = tmp + (with ? "/shards-on" : "/shards-off");
    dpt::write_shards(raw, dir, 8, 1);
    const auto files = dpt::find_train_shards(dir, "cifar10");
    std::vector<double> r;
    for (int i = 0; i < repeats; ++i)
      r.push_back(seconds_of([&] { dpt::load_shards(files, "cifar10"); }));
    read_shards[with] = median(r);
  }
  std::filesystem::remove_all(tmp);

  std::printf("CPU: %s; medians of %d runs; files on %s\n\n", dpt::cpu_description().c_str(),
              repeats, std::filesystem::temp_directory_path().c_str());
  std::printf("| operation | without checksums | with Fletcher32 | cost |\n|---|---|---|---|\n");
  const char* names[] = {"write a cifar10_cnn checkpoint (Adam, 6.6 MB, fsync)",
                         "read it back (resume)",
                         "read the CIFAR-10 train shards (50,000 images, deflate)"};
  const double* rows[] = {write, read_ckpt, read_shards};
  for (int k = 0; k < 3; ++k)
    std::printf("| %s | %.1f ms | %.1f ms | %+.1f%% |\n", names[k], 1000 * rows[k][0],
                1000 * rows[k][1], 100 * (rows[k][1] / rows[k][0] - 1));
  return 0;
}
