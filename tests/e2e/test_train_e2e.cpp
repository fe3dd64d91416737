// End to end through the CLI: prepare real MNIST / CIFAR-10, train a small run, check it learned.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "test_helpers.h"

namespace dpt::testing {
namespace {

TEST(EndToEnd, MnistConvnetLearnsOnASubset) {
  const TempDir tmp("e2e");
  const std::string& dir = tmp.path();
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("checksums verified"), std::string::npos);
  r = run(dptrain() + " train " + source_dir() +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run --set train.epochs=2 --set train.batch_size=64"
          " --set data.max_train_samples=3000 --set data.max_test_samples=2000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Epoch 2/2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("val_accuracy: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("img/s"), std::string::npos) << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_EQ(s["test_samples"].as<int>(), 2000);
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.90) << r.output;  // chance is 0.10
  EXPECT_GT(s["images_per_sec"].as<double>(), 0.0);
  const std::string csv = read_file(dir + "/run/metrics.csv");
  EXPECT_EQ(csv.rfind("epoch,step,loss,accuracy,val_loss,val_accuracy,lr,images_per_sec", 0), 0u);
  EXPECT_GE(std::count(csv.begin(), csv.end(), '\n'), 5);
  EXPECT_NE(read_file(dir + "/run/config.yaml").find("max_train_samples: 3000"), std::string::npos);
  EXPECT_NE(read_file(dir + "/run/log.txt").find("Test: 2000 samples"), std::string::npos);
}

// Prepares CIFAR-10 in 2 shards under dir and trains configs/<config>.yaml there (run_dir
// dir/run) with the extra --set arguments.
RunResult prepare_and_train_cifar(const std::string& dir, const std::string& config,
                                  const std::string& extra) {
  const RunResult p = run(dptrain() + " prepare cifar10 --raw " + datasets() + "/cifar10 --out " +
                          dir + "/data --shards 2");
  if (p.exit_code != 0) return p;
  return run(dptrain() + " train " + source_dir() + "/configs/" + config +
             ".yaml --set data.dir=" + dir + "/data --set run_dir=" + dir + "/run " + extra);
}

TEST(EndToEnd, CifarSmallLearnsInOneEpoch) {
  const TempDir tmp("e2e");
  const std::string& dir = tmp.path();
  const auto r =
      prepare_and_train_cifar(dir, "cifar10_small",
                              "--set train.epochs=1 --set train.batch_size=32"
                              " --set data.max_train_samples=4000 --set data.max_test_samples=2000"
                              " --set 'data.augment={random_crop: 4, horizontal_flip: true}'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.20) << r.output;  // chance is 0.10
}

// configs/cifar10_fast.yaml end to end, shortened: the whitening layer is measured on the
// images, lookahead syncs, the frozen layer stays as measured, and the net learns.
TEST(EndToEnd, CifarFastRecipeWhitensAndLearns) {
  const TempDir tmp("e2e");
  const std::string& dir = tmp.path();
  const auto r = prepare_and_train_cifar(
      dir, "cifar10_fast",
      "--set train.epochs=2 --set train.batch_size=256"
      " --set data.max_train_samples=1500 --set data.max_test_samples=500"
      " --set train.lookahead.start_epoch=0 --set checkpoint.every_epochs=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Whitening: layer 'conv2d' (Conv2D) initialised from the 2883000 2x2 "
                          "patches of 3000 training images"),
            std::string::npos)
      << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_GT(s["test_accuracy"].as<double>(), 0.25) << r.output;  // chance is 0.10
  // The frozen whitening kernel is the same in both epochs' checkpoints (never updated).
  const auto kernel = [&](int epoch) {
    return run("h5dump -d /model/conv2d/kernel " + dir + "/run/checkpoints/ckpt-000" +
               std::to_string(epoch) + "-*.h5 | tail -n +3")
        .output;
  };
  EXPECT_EQ(kernel(1), kernel(2));
  EXPECT_NE(kernel(1).find("DATA"), std::string::npos) << kernel(1);
}

// prepare --max-train-samples / --max-test-samples: a small copy (the GPU bundle's CIFAR-10),
// checksummed and sharded like the full one.
TEST(EndToEnd, PrepareKeepsTheFirstSamplesWhenAskedForFewer) {
  const TempDir tmp("subset");
  const std::string& dir = tmp.path();
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 2 --max-train-samples 300 --max-test-samples 120");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("300 train and 120 test samples"), std::string::npos) << r.output;
  r = run(dptrain() + " verify " + dir + "/data/mnist-train-00000-of-00002.h5 " + dir +
          "/data/mnist-train-00001-of-00002.h5 " + dir + "/data/mnist-test.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("150 samples"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("120 samples"), std::string::npos) << r.output;
  r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
          "/bad --max-train-samples -5");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(EndToEnd, MissingDataIsAClearError) {
  const TempDir tmp("e2e");
  const std::string& dir = tmp.path();
  const auto r = run(dptrain() + " train " + source_dir() +
                     "/configs/mnist_convnet.yaml --set data.dir=" + dir +
                     "/nothing --set run_dir=" + dir + "/run");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dptrain prepare mnist"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing

namespace dpt::testing {
namespace {

TEST(EndToEnd, EarlyStoppingOnTrainingAccuracyEndsTheRun) {
  const TempDir tmp("e2e");
  const std::string& dir = tmp.path();
  auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
               "/data --shards 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The Keras example's callback: stop once training accuracy reaches the target.
  r = run(dptrain() + " train " + source_dir() +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run --set train.epochs=5"
          " --set data.max_train_samples=1500 --set data.max_test_samples=500"
          " --set 'train.early_stopping={monitor: accuracy, target: 0.5}'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Early stopping: accuracy reached"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 5/5"), std::string::npos) << r.output;
  const YAML::Node s = YAML::LoadFile(dir + "/run/summary.yaml");
  EXPECT_LT(s["epochs_run"].as<int>(), 5);
  EXPECT_EQ(s["test_samples"].as<int>(), 500);  // the final test still runs
}

TEST(EndToEnd, ProgressBarShowsAnEtaAndTestEveryEpochLogsEachEpoch) {
  const TempDir tmp("eta");
  const std::string& dir = tmp.path();
  ASSERT_EQ(run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + dir +
                "/data --shards 1")
                .exit_code,
            0);
  const auto r =
      run("DPT_PROGRESS=1 " + dptrain() + " train " + source_dir() +
          "/configs/mnist_convnet.yaml --set data.dir=" + dir + "/data --set run_dir=" + dir +
          "/run --set train.epochs=2 --set data.max_train_samples=1000"
          " --set data.max_test_samples=500 --set train.log_every_steps=2"
          " --set eval.test_every_epoch=true");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(" - ETA: "), std::string::npos) << r.output;
  for (const char* e : {"Epoch test: epoch 1 - accuracy: ", "Epoch test: epoch 2 - accuracy: "})
    EXPECT_NE(r.output.find(e), std::string::npos) << e << "\n" << r.output;
  EXPECT_NE(r.output.find(" s - since start "), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing
