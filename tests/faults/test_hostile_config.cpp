// Faults: hostile configs (aliases, duplicates, documents, merge keys, --set misreadings,
// sizes that overflow, surprising semantics), each an error at start naming the fix.
#include <gtest/gtest.h>

#include <chrono>

#include "config_cases.h"

namespace dpt::testing {
namespace {

// Hostile configs (issue: hostile inputs, round two): each is an error at start naming the fix.
TEST(HostileConfig, SelfReferencingAliasIsBoundedNotACrash) {
  const auto e = error_of(kBase, {"x=&a {k: *a}"});
  EXPECT_NE(e.find("nests deeper than 32 levels"), std::string::npos) << e;
}

TEST(HostileConfig, BillionLaughsIsRefusedQuickly) {
  std::string v = "[&a [1,1,1,1,1,1,1,1,1]";
  for (char c = 'b'; c <= 'i'; ++c) {
    v += ", &" + std::string(1, c) + " [";
    for (int k = 0; k < 9; ++k) v += (k ? ",*" : "*") + std::string(1, char(c - 1));
    v += "]";
  }
  v += "]";
  ASSERT_LT(v.size(), 400u);
  const auto t0 = std::chrono::steady_clock::now();
  const auto e = error_of(kBase, {"x=" + v});
  EXPECT_NE(e.find("expands to more than"), std::string::npos) << e;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(HostileConfig, DuplicateKeysSecondDocumentsAndMergeKeysAreRefused) {
  auto e = error_of(std::string(kBase) + "train: {epochs: 2}\n");
  EXPECT_NE(e.find("key 'train' appears twice (lines 9 and 10)"), std::string::npos) << e;
  e = error_of(replace(kBase, "{epochs: 1, batch_size: 16}", "{epochs: 1, epochs: 3}"));
  EXPECT_NE(e.find("key 'train.epochs' appears twice"), std::string::npos) << e;
  e = error_of(std::string(kBase) + "---\nname: other\n");
  EXPECT_NE(e.find("holds 2 YAML documents"), std::string::npos) << e;
  e = error_of(replace(kBase, "train: {epochs: 1, batch_size: 16}",
                       "defaults: &d {epochs: 1}\ntrain: {<<: *d, batch_size: 16}"));
  EXPECT_NE(e.find("uses the YAML merge key '<<'"), std::string::npos) << e;
}

TEST(HostileConfig, SetValuesThatWouldBeMisread) {
  auto e = error_of(kBase, {"run_dir=runs/exp #2"});
  EXPECT_NE(e.find("the '#' starts a YAML comment, so the value would be 'runs/exp'"),
            std::string::npos)
      << e;
  EXPECT_EQ(error_of(kBase, {"run_dir=\"runs/exp #2\""}), "");  // quoted, it is kept
  e = error_of(kBase, {"train.epochs=3", "train.epochs="});
  EXPECT_NE(e.find("--set train.epochs= has no value"), std::string::npos) << e;
  e = error_of(kBase, {"train.batch_size=64", "train=~"});
  EXPECT_NE(e.find("--set train=~ is null"), std::string::npos) << e;
  e = error_of(kBase, {"model.layers.0x.conv2d.filters=4"});
  EXPECT_NE(e.find("'0x' is not an index"), std::string::npos) << e;
  e = error_of(kBase, {"model.layers.99999999999999999999.conv2d.filters=4"});
  EXPECT_NE(e.find("is not an index"), std::string::npos) << e;
}

TEST(HostileConfig, ConfigThatIsAFolderOrHugeIsRefused) {
  const TempDir tmp("cfg");
  try {
    load_config(tmp.path());
    ADD_FAILURE() << "a folder was read as a config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder, not a file"), std::string::npos) << e.what();
  }
  write_text(tmp.path() + "/big.yaml", std::string(kBase) + "# " + std::string(2 << 20, 'x'));
  try {
    load_config(tmp.path() + "/big.yaml");
    ADD_FAILURE() << "a 2 MiB config was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is larger than 1024 KiB"), std::string::npos) << e.what();
  }
}

TEST(HostileConfig, SizesThatOverflowAreRefused) {
  auto e = error_of(replace(kBase, "filters: 8", "filters: 2305843009213693952"));
  EXPECT_NE(e.find("is too large"), std::string::npos) << e;
  e = error_of(
      replace(kBase, "kernel: 3,", "kernel: 3, strides: 4611686018427387904, padding: same,"));
  EXPECT_NE(e.find("is beyond any image"), std::string::npos) << e;
  EXPECT_EQ(e.find("padding 'valid'"), std::string::npos) << e;
  e = error_of(replace(kBase, "input: [28, 28, 1]", "input: [100000, 100000, 1]"));
  EXPECT_NE(e.find("config model.layers[0] (line 6): a tensor of shape"), std::string::npos) << e;
  e = error_of(replace(kBase, "input: [28, 28, 1]", "input: [10000, 10000, 1]"));
  EXPECT_NE(e.find("values per image"), std::string::npos) << e;
  const TempDir tmp("cfg");
  write_text(tmp.path() + "/c.yaml", replace(kBase, "filters: 8", "filters: 4611686018427387904"));
  const auto r = run(dptrain() + " summary " + tmp.path() + "/c.yaml");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.find("Total params"), std::string::npos) << r.output;
}

TEST(HostileConfig, SemanticsThatWouldSurpriseAreErrorsAtStart) {
  auto e = error_of(std::string(kBase) + "data_extra: 1\n");  // (unknown keys: as before)
  EXPECT_NE(e.find("data_extra"), std::string::npos) << e;
  e = error_of(replace(kBase, "train: {epochs: 1, batch_size: 16}",
                       "train: {epochs: 1, early_stopping: {monitor: loss, min_delta: .nan}}"));
  EXPECT_NE(e.find("must be a finite number"), std::string::npos) << e;
  e = error_of(replace(kBase, "train: {epochs: 1, batch_size: 16}",
                       "train: {epochs: 1, early_stopping: {target: 0.99}}"));
  EXPECT_NE(e.find("is set but train.early_stopping.monitor is not"), std::string::npos) << e;
  e = error_of(replace(kBase, "train: {epochs: 1, batch_size: 16}",
                       "train: {epochs: 1, early_stopping: {monitor: val_loss, patience: 2}}"));
  EXPECT_NE(e.find("data.validation_split is 0"), std::string::npos) << e;
  e = error_of(
      replace(kBase, "dir: /nonexistent}", "dir: /nonexistent, augment: {random_crop: 28}}"));
  EXPECT_NE(e.find("data.augment.random_crop is 28, but the images are 28"), std::string::npos)
      << e;
  e = error_of(replace(replace(kBase, "activation: relu}", "activation: relu, name: x}"),
                       "- dense: {units: 10}", "- dense: {units: 10, name: x}"));
  EXPECT_NE(e.find("layer name 'x' is already taken by model.layers[0]"), std::string::npos) << e;
}

}  // namespace
}  // namespace dpt::testing
