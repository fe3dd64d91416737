// train.precision end to end: a bf16 run learns, checkpoints cross precisions both ways, auto
// follows the hardware (bf16 where the CPU has it, fp32 where oneDNN is capped to AVX2), and an
// explicit bf16 on a CPU without it is refused at start naming the CPU and its ISA.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "core/cpu_info.h"
#include "core/error.h"
#include "models/kernels/precision_support.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

bool cpu_has_bf16() { return auto_precision_cpu().precision == Precision::kBf16; }

// oneDNN's own switch caps the ISA it dispatches to: an AVX2 machine, as far as it knows.
const char* kAvx2Cap = "ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ";

// Prepares a small MNIST once per test; the fixture's tests run on any CPU.
class PrecisionRun : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("prec");
    ASSERT_EQ(run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " +
                  tmp_->path() + "/data --shards 2")
                  .exit_code,
              0);
  }
  std::string train(const std::string& run_name, const std::string& extra) const {
    return dptrain() + " train " + source_dir() +
           "/configs/mnist_convnet.yaml --set data.dir=" + tmp_->path() +
           "/data --set run_dir=" + tmp_->path() + "/" + run_name +
           " --set data.max_train_samples=3000 --set data.max_test_samples=2000 " + extra;
  }
  YAML::Node summary(const std::string& run_name) const {
    return YAML::LoadFile(tmp_->path() + "/" + run_name + "/summary.yaml");
  }
  // The precision attribute of the run's newest checkpoint, as h5dump prints it.
  std::string checkpoint_precision(const std::string& run_name) const {
    return run("h5dump -a /train/precision $(ls " + tmp_->path() + "/" + run_name +
               "/checkpoints/ckpt-*.h5 | tail -1)")
        .output;
  }
  std::unique_ptr<TempDir> tmp_;
};

class Bf16Run : public PrecisionRun {
 protected:
  void SetUp() override {
    if (!cpu_has_bf16())
      GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX (oneDNN dispatches to "
                   << cpu_isa_name() << " on " << cpu_description() << ")";
    PrecisionRun::SetUp();
  }
};

TEST_F(Bf16Run, Bf16RunLearnsAndSaysSo) {
  const auto r = run(train("b", "--set train.epochs=2 --set train.precision=bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("precision bf16"), std::string::npos) << r.output;
  EXPECT_GT(summary("b")["test_accuracy"].as<double>(), 0.9) << r.output;  // chance is 0.1
}

TEST_F(Bf16Run, CheckpointsResumeAcrossPrecisionsBothWays) {
  auto r = run(train("x", "--set train.epochs=1 --set train.precision=bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(train("x", "--set train.epochs=2 --set train.precision=fp32 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained in bf16, this run continues in fp32"), std::string::npos)
      << r.output;
  r = run(train("x", "--set train.epochs=3 --set train.precision=bf16 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained in fp32, this run continues in bf16"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Epoch 3/3"), std::string::npos) << r.output;
}

TEST_F(Bf16Run, AutoChoosesBf16WhereTheCpuHasIt) {
  const auto r = run(train("a", "--set train.epochs=1 --set train.precision=auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Precision: auto chose bf16: oneDNN dispatches to"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("precision bf16 (auto)"), std::string::npos) << r.output;
  EXPECT_EQ(summary("a")["precision"].as<std::string>(), "bf16");
  EXPECT_NE(checkpoint_precision("a").find("\"bf16\""), std::string::npos)
      << checkpoint_precision("a");
}

TEST_F(PrecisionRun, ACpuWithoutBf16IsRefusedAtStartNamingItsIsa) {
  const auto r = run(kAvx2Cap + train("n", "--set train.epochs=1 --set train.precision=bf16"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train.precision bf16 needs a CPU with AVX512-BF16 or AMX, but oneDNN "
                          "dispatches to avx2 on " +
                          cpu_description()),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("use precision: auto"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("ISA code"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 1/"), std::string::npos) << r.output;
}

// The fall-back that keeps the fast recipes starting on every CPU: if auto stopped falling
// back, this run would be refused like the one above.
TEST_F(PrecisionRun, AutoFallsBackToFp32WithoutBf16AndRecordsIt) {
  const auto r = run(kAvx2Cap + train("f", "--set train.epochs=1 --set train.precision=auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Precision: auto chose fp32: oneDNN dispatches to avx2 on " +
                          cpu_description() + ", which has no native bf16"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("precision fp32 (auto)"), std::string::npos) << r.output;
  const YAML::Node s = summary("f");
  EXPECT_EQ(s["precision"].as<std::string>(), "fp32");
  EXPECT_NE(s["precision_reason"].as<std::string>().find("auto: oneDNN dispatches to avx2"),
            std::string::npos);
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.5) << r.output;  // it trained: chance is 0.1
  EXPECT_NE(checkpoint_precision("f").find("\"fp32\""), std::string::npos)
      << checkpoint_precision("f");
  // The resolved config keeps what was asked for; the checkpoint says what it became.
  EXPECT_NE(run("cat " + tmp_->path() + "/f/config.yaml").output.find("precision: auto"),
            std::string::npos);
}

TEST_F(PrecisionRun, ExplicitFp32StaysFp32WithoutAChoiceLine) {
  const auto r = run(train("e", "--set train.epochs=1 --set train.precision=fp32"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("Precision: auto"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("precision fp32"), std::string::npos) << r.output;
  EXPECT_EQ(summary("e")["precision"].as<std::string>(), "fp32");
  EXPECT_FALSE(summary("e")["precision_reason"].IsDefined());
}

}  // namespace
}  // namespace dpt::testing
