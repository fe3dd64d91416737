// `dptrain prepare`: the official raw files of a dataset -> N checksummed HDF5 train shards + a
// test file.
#include <iostream>
#include <memory>

#include "core/error.h"
#include "data/raw_readers.h"
#include "data/shards.h"
#include "trainer/cli/commands.h"

namespace dpt::cli {

namespace {

struct PrepareArgs {
  std::string dataset, raw_dir, out_dir;
  int64_t shards = 8;
  uint64_t seed = 1234;
  bool no_verify = false;
  int64_t max_train = 0, max_test = 0;  // 0: all
};

// Keeps the first n samples of a split (0 or more than there are: all of them).
void keep_first(RawSplit& s, int64_t n, int64_t image_bytes) {
  if (n <= 0 || n >= s.n) return;
  s.n = n;
  s.images.resize(size_t(n * image_bytes));
  s.labels.resize(size_t(n));
}

int run_prepare(const PrepareArgs& a, Communicator& comm) {
  require_one_process(comm, "prepare");
  RawDataset d = read_raw_dataset(a.dataset, a.raw_dir, !a.no_verify);
  keep_first(d.train, a.max_train, d.height * d.width * d.channels);
  keep_first(d.test, a.max_test, d.height * d.width * d.channels);
  std::cout << "prepare: " << a.dataset << ": " << d.train.n << " train and " << d.test.n
            << " test samples of " << d.height << "x" << d.width << "x" << d.channels
            << (a.no_verify ? ", checksums NOT verified (--no-verify)" : ", checksums verified")
            << "\n";
  for (const auto& f : write_shards(d, a.out_dir, a.shards, a.seed))
    std::cout << "  wrote " << f << "\n";
  return 0;
}

}  // namespace

void add_prepare_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<PrepareArgs>();
  auto* cmd = app.add_subcommand("prepare", "raw official files -> HDF5 shards + test file");
  cmd->add_option("dataset", a->dataset, "mnist | fashion-mnist | cifar10")
      ->required()
      ->check(CLI::IsMember({"mnist", "fashion-mnist", "cifar10"}));
  cmd->add_option("--raw", a->raw_dir, "folder with the official raw files")->required();
  cmd->add_option("--out", a->out_dir, "output folder for the shards")->required();
  cmd->add_option("--shards", a->shards, "number of train shards (>= ranks you will train on)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--seed", a->seed, "seed of the global shuffle before sharding");
  cmd->add_flag("--no-verify", a->no_verify, "skip the MD5 comparison with known checksums");
  cmd->add_option("--max-train-samples", a->max_train,
                  "keep only the first N training samples of the raw files (a small copy)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-test-samples", a->max_test,
                  "keep only the first N test samples of the raw files")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a, &action] { action = [a](Communicator& c) { return run_prepare(*a, c); }; });
}

}  // namespace dpt::cli
