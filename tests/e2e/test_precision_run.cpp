// train.precision end to end: a bf16 run learns, checkpoints cross precisions both ways, and a
// CPU without bf16 is refused at start naming its ISA.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "../unit/test_helpers.h"
#include "core/error.h"
#include "models/kernels/precision_support.h"

namespace dpt::testing {
namespace {

class PrecisionRun : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      check_precision_cpu(Precision::kBf16);
    } catch (const Error&) {
      GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX";
    }
    tmp_ = std::make_unique<TempDir>("prec");
    ASSERT_EQ(run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " +
                  tmp_->path() + "/data --shards 2").exit_code, 0);
  }
  std::string train(const std::string& run_name, const std::string& extra) const {
    return dptrain() + " train " + DPT_SOURCE_DIR + "/configs/mnist_convnet.yaml --set data.dir=" +
           tmp_->path() + "/data --set run_dir=" + tmp_->path() + "/" + run_name +
           " --set data.max_train_samples=3000 --set data.max_test_samples=2000 " + extra;
  }
  std::unique_ptr<TempDir> tmp_;
};

TEST_F(PrecisionRun, Bf16RunLearnsAndSaysSo) {
  const auto r = run(train("b", "--set train.epochs=2 --set train.precision=bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("precision bf16"), std::string::npos) << r.output;
  const YAML::Node s = YAML::LoadFile(tmp_->path() + "/b/summary.yaml");
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.9) << r.output;  // chance is 0.1
}

TEST_F(PrecisionRun, CheckpointsResumeAcrossPrecisionsBothWays) {
  auto r = run(train("x", "--set train.epochs=1 --set train.precision=bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(train("x", "--set train.epochs=2 --set train.precision=fp32 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained in bf16, this run continues in fp32"), std::string::npos) << r.output;
  r = run(train("x", "--set train.epochs=3 --set train.precision=bf16 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained in fp32, this run continues in bf16"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Epoch 3/3"), std::string::npos) << r.output;
}

TEST_F(PrecisionRun, ACpuWithoutBf16IsRefusedAtStart) {
  // oneDNN's own switch caps the ISA it dispatches to: an AVX2 machine, as far as it knows.
  const auto r = run("ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 " +
                     train("n", "--set train.epochs=1 --set train.precision=bf16"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train.precision bf16 needs a CPU with AVX512-BF16 or AMX"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("Epoch 1/"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing
