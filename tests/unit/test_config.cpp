// Config parsing: the zoo's parameter counts, overrides, and errors that name the key and line.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "models/model.h"
#include "test_helpers.h"
#include "trainer/config.h"

namespace dpt::testing {
namespace {

struct ZooCase {
  const char* file;
  int64_t total, non_trainable;
};

TEST(Zoo, EveryConfigHasTheDesignParameterCount) {
  const ZooCase cases[] = {{"mnist_mlp", 669706, 0},       {"mnist_convnet", 34826, 0},
                           {"mnist_cnn", 1625866, 0},      {"mnist_cnn5x5", 3274634, 0},
                           {"mnist_cnn3conv", 1048394, 0}, {"cifar10_cnn", 551466, 448},
                           {"cifar10_small", 528054, 0}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const Config cfg = load_config(source_dir() + "/configs/" + c.file + ".yaml");
    Model m(cfg.model, cfg.name);
    EXPECT_EQ(m.num_trainable() + m.num_non_trainable(), c.total);
    EXPECT_EQ(m.num_non_trainable(), c.non_trainable);
    EXPECT_NE(m.summary().find("Total params: "), std::string::npos);
  }
}

TEST(Zoo, SummaryCommandPrintsKerasTotals) {
  const auto r = run(dptrain() + " summary " + source_dir() + "/configs/cifar10_cnn.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Total params: 551,466"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Non-trainable params: 448"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("batch_normalization_2 (BatchNormalization)"), std::string::npos);
}

TEST(Zoo, SummaryColumnsStayAlignedWithLongLayerNames) {
  // "batch_normalization_2 (BatchNormalization)" is longer than Keras 2's 38-character column.
  const Config cfg = load_config(source_dir() + "/configs/cifar10_cnn.yaml");
  const std::string text = Model(cfg.model, cfg.name).summary();
  std::istringstream in(text);
  std::string line;
  size_t shape_col = std::string::npos, param_col = std::string::npos;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.find("Layer (type)") != std::string::npos) {
      shape_col = line.find("Output Shape");
      param_col = line.find("Param #");
      continue;
    }
    const size_t at = line.find("(None");
    if (at == std::string::npos) continue;
    ASSERT_NE(shape_col, std::string::npos);
    ++rows;
    EXPECT_EQ(at, shape_col) << line;
    EXPECT_EQ(line[at - 1], ' ') << line;
    ASSERT_GT(line.size(), param_col) << line;
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(line[param_col]))) << line;
    EXPECT_EQ(line[param_col - 1], ' ') << line;
  }
  EXPECT_EQ(rows, 19);
}

const char* kBase = R"(name: t
data: {dataset: mnist, dir: /nonexistent}
model:
  input: [28, 28, 1]
  layers:
    - conv2d: {filters: 8, kernel: 3, activation: relu}
    - flatten: {}
    - dense: {units: 10}
train: {epochs: 1, batch_size: 16}
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  write_text(dir + "/c.yaml", yaml);
  try {
    const Config c = load_config(dir + "/c.yaml", sets);
    Model m(c.model, c.name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}

TEST(Config, BaseParses) { EXPECT_EQ(error_of(kBase), ""); }

TEST(Config, UnknownKeyNamesKeyAndLine) {
  const auto e = error_of(replace(kBase, "{filters: 8,", "{filter: 8,"));
  EXPECT_NE(e.find("model.layers[0].conv2d.filter"), std::string::npos) << e;
  EXPECT_NE(e.find("line 6"), std::string::npos) << e;
}

TEST(Config, UnknownTopLevelKey) {
  const auto e = error_of(std::string(kBase) + "trian: {}\n");
  EXPECT_NE(e.find("config.trian"), std::string::npos) << e;
  EXPECT_NE(e.find("line 10"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesKey) {
  const auto e = error_of(replace(kBase, "epochs: 1", "epochs: many"));
  EXPECT_NE(e.find("train.epochs"), std::string::npos) << e;
  EXPECT_NE(e.find("integer"), std::string::npos) << e;
}

TEST(Config, UnknownLayerIsListed) {
  const auto e = error_of(replace(kBase, "- flatten: {}", "- flaten: {}"));
  EXPECT_NE(e.find("unknown layer 'flaten'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 7"), std::string::npos) << e;
}

TEST(Config, PoolBelowOneByOneIsRefused) {
  std::string y = kBase;
  y = replace(y, "- flatten: {}",
              "- max_pool: {pool: 2}\n    - max_pool: {pool: 2}\n    - max_pool: {pool: 2}\n"
              "    - max_pool: {pool: 2}\n    - max_pool: {pool: 2}\n    - flatten: {}");
  const auto e = error_of(y);
  EXPECT_NE(e.find("model.layers[5]"), std::string::npos) << e;
  EXPECT_NE(e.find("below 1x1"), std::string::npos) << e;
}

TEST(Config, KernelLargerThanInput) {
  const auto e = error_of(replace(kBase, "kernel: 3", "kernel: 29"));
  EXPECT_NE(e.find("conv2d"), std::string::npos) << e;
  EXPECT_NE(e.find("smaller than the window"), std::string::npos) << e;
}

TEST(Config, SoftmaxOnLastLayerIsRefused) {
  const auto e = error_of(replace(kBase, "{units: 10}", "{units: 10, activation: softmax}"));
  EXPECT_NE(e.find("applies softmax"), std::string::npos) << e;
}

TEST(Config, DenseOnImageNeedsFlatten) {
  const auto e = error_of(replace(kBase, "    - flatten: {}\n", ""));
  EXPECT_NE(e.find("add 'flatten: {}'"), std::string::npos) << e;
}

TEST(Config, SetOverridesAnyKey) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  write_text(dir + "/c.yaml", kBase);
  const Config c = load_config(dir + "/c.yaml",
                               {"train.epochs=7", "train.optimizer={sgd: {lr: 0.5, momentum: 0.9}}",
                                "model.layers.0.conv2d.filters=4", "data.validation_split=0.2"});
  EXPECT_EQ(c.train.epochs, 7);
  EXPECT_EQ(c.train.optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(c.train.optimizer.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.data.validation_split, 0.2);
  Model m(c.model, c.name);
  EXPECT_EQ(m.shapes()[1], (Shape{26, 26, 4}));
  EXPECT_NE(c.resolved.find("epochs: 7"), std::string::npos);
}

TEST(Config, SetWithUnknownKeyIsRefused) {
  const auto e = error_of(kBase, {"train.epoch=3"});
  EXPECT_NE(e.find("train.epoch"), std::string::npos) << e;
  EXPECT_NE(error_of(kBase, {"no-equals-sign"}).find("key=value"), std::string::npos);
}

TEST(Config, CliReportsErrorAndExitsNonZero) {
  const TempDir tmp("cli");
  const std::string& dir = tmp.path();
  write_text(dir + "/c.yaml", replace(kBase, "- flatten: {}", "- flaten: {}"));
  const auto r = run(dptrain() + " train " + dir + "/c.yaml");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dptrain: rank 0: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unknown layer 'flaten'"), std::string::npos) << r.output;
}


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
    EXPECT_NE(std::string(e.what()).find("is a folder, not a file"), std::string::npos)
        << e.what();
  }
  write_text(tmp.path() + "/big.yaml", std::string(kBase) + "# " + std::string(2 << 20, 'x'));
  try {
    load_config(tmp.path() + "/big.yaml");
    ADD_FAILURE() << "a 2 MiB config was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is larger than 1024 KiB"), std::string::npos)
        << e.what();
  }
}

TEST(HostileConfig, SizesThatOverflowAreRefused) {
  auto e = error_of(replace(kBase, "filters: 8", "filters: 2305843009213693952"));
  EXPECT_NE(e.find("is too large"), std::string::npos) << e;
  e = error_of(replace(kBase, "kernel: 3,", "kernel: 3, strides: 4611686018427387904, padding: same,"));
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
  e = error_of(replace(kBase, "dir: /nonexistent}", "dir: /nonexistent, augment: {random_crop: 28}}"));
  EXPECT_NE(e.find("data.augment.random_crop is 28, but the images are 28"), std::string::npos)
      << e;
  e = error_of(replace(replace(kBase, "activation: relu}", "activation: relu, name: x}"),
                       "- dense: {units: 10}", "- dense: {units: 10, name: x}"));
  EXPECT_NE(e.find("layer name 'x' is already taken by model.layers[0]"), std::string::npos) << e;
}

}  // namespace
}  // namespace dpt::testing
