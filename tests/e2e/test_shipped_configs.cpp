// Every config in configs/ starts and trains a step on this CPU, in the precision auto picks
// here: no shipped config may assume more of the CPU than AVX2 (run again under the AVX2 cap).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "models/kernels/precision_support.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

TEST(ShippedConfigs, EveryOneStartsAndTrainsHereInThePrecisionItAsksFor) {
  const TempDir tmp("configs");
  const std::string& dir = tmp.path();
  for (const char* ds : {"mnist", "cifar10"}) {
    const auto p = run(dptrain() + " prepare " + ds + " --raw " + datasets() + "/" + ds +
                       " --out " + dir + "/" + ds + " --shards 1");
    ASSERT_EQ(p.exit_code, 0) << p.output;
  }
  const std::string here = precision_name(resolve_precision(Precision::kAuto, false).precision);
  int configs = 0;
  for (const auto& e : std::filesystem::directory_iterator(source_dir() + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    const std::string name = e.path().stem().string();
    SCOPED_TRACE(name);
    ++configs;
    const YAML::Node cfg = YAML::LoadFile(e.path().string());
    const std::string asked =
        cfg["train"]["precision"] ? cfg["train"]["precision"].as<std::string>() : "fp32";
    EXPECT_TRUE(asked == "fp32" || asked == "auto")
        << "a shipped config must start on every CPU with AVX2: precision " << asked;
    // One short epoch of the config as shipped, on a few samples.
    const auto r =
        run(dptrain() + " train " + e.path().string() + " --set data.dir=" + dir + "/" +
            cfg["data"]["dataset"].as<std::string>() + " --set run_dir=" + dir + "/run-" + name +
            " --set train.epochs=1 --set train.batch_size=32"
            " --set data.max_train_samples=320 --set data.max_test_samples=64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Epoch 1/1"), std::string::npos) << r.output;
    const YAML::Node s = YAML::LoadFile(dir + "/run-" + name + "/summary.yaml");
    EXPECT_EQ(s["precision"].as<std::string>(), asked == "auto" ? here : asked) << r.output;
    EXPECT_EQ(s["test_samples"].as<int>(), 64);
  }
  EXPECT_GE(configs, 10);
}

}  // namespace
}  // namespace dpt::testing
