// Issue "silent corruption": checksums catch changed bytes in checkpoints and shards, by name;
// --resume auto falls back; old files load with a warning; random mutants never pass changed.
#include <random>

#include "comm/local_communicator.h"
#include "fault_helpers.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/evaluator.h"

namespace dpt::testing {
namespace {

class Integrity : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    const auto r = run(train_cmd("run", "--set train.epochs=2"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ckpt_ = newest("run");
  }
  // A copy of `src` with one byte inside dataset `ds`'s stored data complemented.
  std::string corrupt(const std::string& src, const std::string& ds,
                      const std::string& name) const {
    const std::string dst = dir_ + "/" + name;
    run("cp " + src + " " + dst);
    const auto [offset, size] = chunk_location(dst, ds);
    EXPECT_GT(size, 0u) << ds;
    flip_byte(dst, offset + size / 2);
    return dst;
  }
  std::string ckpt_;
};

TEST_F(Integrity, ChangedParameterBytesAreRefusedNamingTheDataset) {
  const std::string bad = corrupt(ckpt_, "/model/dense/kernel", "bad.h5");
  auto r = run(dptrain() + " eval " + bad + " --data " + data() + "/mnist-test.h5");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(
      r.output.find("checksum mismatch in /model/dense/kernel of " + bad + ": the file is corrupt"),
      std::string::npos)
      << r.output;
  r = run(dptrain() + " verify " + ckpt_ + " " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("ok: " + ckpt_), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checksum mismatch in /model/dense/kernel"), std::string::npos)
      << r.output;
}

TEST_F(Integrity, ChangedOptimizerBytesAreRefusedOnEveryRankAndResumeAutoFallsBack) {
  const std::string bad = corrupt(ckpt_, "/optimizer/v/conv2d_1/kernel", "bad.h5");
  auto r = run(train_cmd("run", "--set train.epochs=3 --resume " + bad, 2));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(
      r.output.find("rank 0: error: checksum mismatch in /optimizer/v/conv2d_1/kernel of " + bad),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("(also on rank 1)"), std::string::npos) << r.output;
  // Corrupt the newest checkpoint in place: --resume auto says so and takes the previous one.
  const std::string previous =
      trim(run("ls " + ckpt_dir("run") + "/ckpt-*.h5 | tail -2 | head -1").output);
  run("cp " + bad + " " + ckpt_);
  r = run(train_cmd("run", "--set train.epochs=3 --resume auto", 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Resume: skipping '" + ckpt_ +
                          "': checksum mismatch in "
                          "/optimizer/v/conv2d_1/kernel"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Resume: from " + previous), std::string::npos) << r.output;
}

TEST_F(Integrity, ChangedShardImagesAndLabelsAreRefusedNamingTheDataset) {
  run("cp -r " + data() + " " + dir_ + "/d");
  const std::string shard = dir_ + "/d/mnist-train-00001-of-00002.h5";
  const std::string pristine = read_file(shard);
  for (const std::string ds : {"images", "labels"}) {
    write_file(shard, pristine);
    const auto [offset, size] = chunk_location(shard, ds);
    flip_byte(shard, offset + size / 2);
    const auto r = run(train_cmd("x" + ds, "--set train.epochs=1", 2, dir_ + "/d"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("rank 1: error: checksum mismatch in " + ds + " of " + shard),
              std::string::npos)
        << r.output;
    const auto v = run(dptrain() + " verify " + shard);
    EXPECT_EQ(v.exit_code, 1) << v.output;
    EXPECT_NE(v.output.find("checksum mismatch in /" + ds), std::string::npos) << v.output;
  }
}

// Rewrites a file the way dptrain wrote it before checksums: contiguous datasets without
// filters, the default (1.8) file format, format_version 1.
void downgrade_to_format_1(const std::string& src, const std::string& dst) {
  const std::string script =
      "import h5py\n"
      "src = h5py.File('" +
      src +
      "', 'r')\n"
      "dst = h5py.File('" +
      dst +
      "', 'w', libver='earliest')\n"
      "def copy(name, obj):\n"
      "    if isinstance(obj, h5py.Dataset):\n"
      "        d = dst.create_dataset(name, data=obj[()])\n"
      "    else:\n"
      "        d = dst.require_group(name)\n"
      "    for k, v in obj.attrs.items():\n"
      "        d.attrs[k] = v\n"
      "src.visititems(copy)\n"
      "for k, v in src.attrs.items():\n"
      "    dst.attrs[k] = v\n"
      "dst.attrs['format_version'] = 1\n"
      "for k in ['run_id', 'finished', 'early_stopped', 'skipped_steps']:\n"
      "    if 'train' in dst and k in dst['train'].attrs:\n"
      "        del dst['train'].attrs[k]\n";
  write_file(dst + ".py", script);
  const auto r = run("/usr/bin/python3 " + dst + ".py");
  if (r.exit_code != 0) GTEST_SKIP() << "python3-h5py is not installed: " << r.output;
}

TEST_F(Integrity, FilesOfFormatOneStillLoadWithOneWarning) {
  const std::string old_ckpt = dir_ + "/old.h5";
  downgrade_to_format_1(ckpt_, old_ckpt);
  if (::testing::Test::IsSkipped()) return;
  ASSERT_EQ(run("h5dump -p -H " + old_ckpt + " | grep -c FLETCHER32").output, "0\n");
  auto r = run(dptrain() + " eval " + old_ckpt + " --data " + data() + "/mnist-test.h5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(
      lines_of(r.output, "warning: checkpoint '" + old_ckpt + "' was written before checksums"), 1u)
      << r.output;
  // Into a run_dir of its own: a format-1 checkpoint has no run id to show whose files it
  // would join (Note [run marker]).
  r = run(train_cmd("run-old", "--set train.epochs=3 --resume " + old_ckpt));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("was written before checksums (format 1)"), std::string::npos)
      << r.output;
  // Shards too.
  run("mkdir -p " + dir_ + "/d");
  for (const char* f :
       {"mnist-train-00000-of-00002.h5", "mnist-train-00001-of-00002.h5", "mnist-test.h5"})
    downgrade_to_format_1(data() + "/" + f, dir_ + "/d/" + f);
  run("rm -f " + dir_ + "/d/*.py");
  r = run(train_cmd("old", "--set train.epochs=1", 1, dir_ + "/d"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(
      lines_of(r.output, "Warning: 3 data file(s) in " + dir_ + "/d were written before checksums"),
      1u)
      << r.output;
}

// The hostile run from the issue, in process: 150 copies of a checkpoint with 1-8 random bytes
// overwritten (mostly in the first 64 KiB, where HDF5's metadata and the first datasets live).
// Each is either refused or gives exactly the original's logits.
TEST_F(Integrity, RandomMutantsAreRefusedOrHarmless) {
  const Config cfg = parse_config(YAML::Load(checkpoint_config(ckpt_)));
  const ShardData test = load_shards({data() + "/mnist-test.h5"}, "mnist", 256);
  std::vector<int64_t> idx(256);
  for (int64_t i = 0; i < 256; ++i) idx[size_t(i)] = i;
  LocalCommunicator local;
  auto predictions_of = [&](const std::string& path) {
    Model m(cfg.model, cfg.name);
    read_checkpoint(path, m, nullptr);
    std::vector<int32_t> p;
    const EvalResult r = evaluate(m, test, idx, 64, local, &p);
    return std::make_pair(p, r.loss);
  };
  const auto original = predictions_of(ckpt_);
  const std::string pristine = read_file(ckpt_);
  std::mt19937_64 rng(2026);
  int refused = 0, harmless = 0, changed = 0;
  const std::string mutant = dir_ + "/mutant.h5";
  for (int i = 0; i < 150; ++i) {
    std::string bytes = pristine;
    const int flips = 1 + int(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      const size_t span = rng() % 4 ? std::min<size_t>(65536, bytes.size()) : bytes.size();
      bytes[rng() % span] = char(rng() % 256);
    }
    write_file(mutant, bytes);
    try {
      const auto got = predictions_of(mutant);
      if (got.first == original.first && got.second == original.second)
        ++harmless;
      else
        ++changed;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_EQ(changed, 0) << refused << " refused, " << harmless << " harmless";
  EXPECT_GT(refused, 100);
}

}  // namespace
}  // namespace dpt::testing
