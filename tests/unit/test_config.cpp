// Config parsing: the zoo's parameter counts, overrides, and errors that name the key and line.
#include <gtest/gtest.h>

#include <sstream>

#include "config_cases.h"
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

TEST(Config, BaseParses) { EXPECT_EQ(error_of(kBase), ""); }

TEST(Config, UnknownKeyNamesKeyAndLine) {
  const auto e = error_of(replace(kBase, "{filters: 8,", "{filter: 8,"));
  EXPECT_NE(e.find("model.layers[0].conv2d.filter"), std::string::npos) << e;
  EXPECT_NE(e.find("line 6"), std::string::npos) << e;
}

TEST(Config, TraceWindowIsCheckedAndNamed) {
  const std::string base = replace(kBase, "batch_size: 16}", "batch_size: 16, trace: TRACE}");
  EXPECT_EQ(error_of(replace(base, "TRACE", "{steps: [3, 6]}")), "");
  EXPECT_EQ(error_of(replace(base, "TRACE", "{steps: 4}")), "");  // one step
  auto e = error_of(replace(base, "TRACE", "{steps: [6, 3]}"));
  EXPECT_NE(e.find("train.trace.steps"), std::string::npos) << e;
  EXPECT_NE(e.find("must not come after"), std::string::npos) << e;
  e = error_of(replace(base, "TRACE", "{steps: [0, 3]}"));
  EXPECT_NE(e.find("at least 1"), std::string::npos) << e;
  e = error_of(replace(base, "TRACE", "{}"));
  EXPECT_NE(e.find("needs steps: [FROM, TO]"), std::string::npos) << e;
  e = error_of(replace(base, "TRACE", "{steps: [1, 2], step: 3}"));
  EXPECT_NE(e.find("train.trace.step"), std::string::npos) << e;
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

}  // namespace
}  // namespace dpt::testing
