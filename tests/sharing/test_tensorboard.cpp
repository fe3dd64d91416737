// TensorBoard event files, read back by the real tensorboard package: tags, steps, resume.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "sharing_helpers.h"
#include "trainer/sharing/tensorboard.h"

namespace dpt::testing {
namespace {

using Steps = std::vector<int64_t>;

class TensorBoard : public SharingTest {
 protected:
  void SetUp() override {
    SharingTest::SetUp();
    python_ = pyenv_python("tensorboard", &why_);
  }
  // run -> kind ("scalars"/"tensors") -> tag -> [[step, value], ...], as EventAccumulator sees it.
  YAML::Node events(const std::string& run_name) {
    const RunResult r = run(python_ + " " + source_dir() + "/tests/sharing/read_events.py " + dir_ +
                            "/" + run_name + " 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return YAML::Load(r.output);  // JSON is YAML
  }
  static Steps steps(const YAML::Node& series) {
    Steps s;
    for (const auto& e : series) s.push_back(e[0].as<int64_t>());
    return s;
  }
  // metrics.csv rows as (epoch, step, loss, val_loss), split into interval and epoch rows
  // (an epoch row repeats the (epoch, step) of the interval row before it).
  struct Rows {
    Steps interval_steps;
    std::map<int64_t, std::pair<double, double>> epoch_loss;  // epoch -> (loss, val_loss)
  };
  Rows metrics(const std::string& run_name) {
    std::istringstream in(read_file(dir_ + "/" + run_name + "/metrics.csv"));
    std::string line, prev;
    std::getline(in, line);
    Rows rows;
    while (std::getline(in, line)) {
      long long epoch = 0, step = 0;
      double loss = 0, val = -1;
      std::sscanf(line.c_str(), "%lld,%lld,%lf,%*f,%lf", &epoch, &step, &loss, &val);
      const std::string key = std::to_string(epoch) + "," + std::to_string(step);
      if (key == prev)
        rows.epoch_loss[epoch] = {loss, val};
      else
        rows.interval_steps.push_back(step);
      prev = key;
    }
    return rows;
  }
  std::string python_, why_;
};

const std::set<std::string> kTrainTags = {
    "batch_loss", "batch_accuracy", "learning_rate",       "images_per_sec", "allreduce_sec",
    "epoch_loss", "epoch_accuracy", "epoch_learning_rate", "test_accuracy",  "test_loss"};

std::set<std::string> tags(const YAML::Node& map) {
  std::set<std::string> t;
  for (const auto& kv : map) t.insert(kv.first.as<std::string>());
  return t;
}

TEST(TensorBoardFormat, MaskedCrc32cOfTheCheckString) {
  // CRC32C("123456789") is 0xE3069283 (RFC 3720); TFRecord masks it.
  const uint32_t crc = 0xE3069283u;
  EXPECT_EQ(masked_crc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST_F(TensorBoard, EveryTagAndStepAsKerasNamesThem) {
  if (python_.empty()) GTEST_SKIP() << why_;
  const RunResult r = run(train_cmd("run", "--set train.epochs=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const YAML::Node ev = events("run");
  const Rows rows = metrics("run");
  ASSERT_EQ(rows.interval_steps, (Steps{3, 6, 9, 12, 15, 18}));
  const YAML::Node train = ev["train"]["scalars"];
  EXPECT_EQ(tags(train), kTrainTags);
  for (const char* t :
       {"batch_loss", "batch_accuracy", "learning_rate", "images_per_sec", "allreduce_sec"})
    EXPECT_EQ(steps(train[t]), rows.interval_steps) << t;
  for (const char* t : {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"})
    EXPECT_EQ(steps(train[t]), (Steps{1, 2})) << t;
  EXPECT_EQ(steps(train["test_accuracy"]), (Steps{2}));
  EXPECT_EQ(steps(train["test_loss"]), (Steps{2}));
  EXPECT_NEAR(train["learning_rate"][0][1].as<double>(), 0.001, 1e-9);
  const YAML::Node val = ev["validation"]["scalars"];
  EXPECT_EQ(tags(val), (std::set<std::string>{"epoch_loss", "epoch_accuracy"}));
  EXPECT_EQ(steps(val["epoch_loss"]), (Steps{1, 2}));
  for (int e = 1; e <= 2; ++e) {  // the numbers of metrics.csv's epoch rows
    EXPECT_NEAR(train["epoch_loss"][e - 1][1].as<double>(), rows.epoch_loss.at(e).first, 1e-5);
    EXPECT_NEAR(val["epoch_loss"][e - 1][1].as<double>(), rows.epoch_loss.at(e).second, 1e-5);
  }
  const YAML::Node config = ev["train"]["tensors"]["config"];
  ASSERT_EQ(config.size(), 1u);
  EXPECT_EQ(config[0][0].as<int64_t>(), 0);
  EXPECT_NE(config[0][1].as<std::string>().find("name: mnist_convnet"), std::string::npos);
  EXPECT_EQ(ev["train"]["files"].as<int>(), 1);
}

// The run is interrupted after epoch 2's logs but before its checkpoint (the newest checkpoint
// is removed), then resumed with one more epoch: epoch 2 is trained again, and every tag still
// has each step once, as metrics.csv has each row once.
TEST_F(TensorBoard, ResumeWritesEveryStepOnce) {
  if (python_.empty()) GTEST_SKIP() << why_;
  RunResult r = run(train_cmd("run", "--set train.epochs=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(std::remove((dir_ + "/run/checkpoints/ckpt-0002-00000018.h5").c_str()), 0);
  r = run(train_cmd("run", "--set train.epochs=3 --resume auto"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NE(r.output.find("Resume: from"), std::string::npos) << r.output;
  const YAML::Node ev = events("run");
  const Rows rows = metrics("run");
  ASSERT_EQ(rows.interval_steps, (Steps{3, 6, 9, 12, 15, 18, 21, 24, 27}));
  const YAML::Node train = ev["train"]["scalars"];
  EXPECT_EQ(tags(train), kTrainTags);
  for (const auto& kv : train) {
    const Steps s = steps(kv.second);
    EXPECT_EQ(std::set<int64_t>(s.begin(), s.end()).size(), s.size())
        << kv.first.as<std::string>() << " has a step twice";
  }
  EXPECT_EQ(steps(train["batch_loss"]), rows.interval_steps);
  EXPECT_EQ(steps(train["epoch_loss"]), (Steps{1, 2, 3}));
  EXPECT_EQ(steps(train["test_loss"]), (Steps{3}));  // the first run's (epoch 2) was dropped
  EXPECT_EQ(steps(ev["validation"]["scalars"]["epoch_accuracy"]), (Steps{1, 2, 3}));
  // The values are the resumed run's, as in metrics.csv.
  EXPECT_NEAR(train["epoch_loss"][1][1].as<double>(), rows.epoch_loss.at(2).first, 1e-5);
  EXPECT_EQ(steps(ev["train"]["tensors"]["config"]), (Steps{0, 10}));
  EXPECT_EQ(ev["train"]["files"].as<int>(), 2);  // one per process
}

TEST_F(TensorBoard, ConfigKeyTurnsItOff) {
  RunResult r = run(train_cmd("run", "--set train.epochs=1 --set train.tensorboard=false"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(::access((dir_ + "/run/metrics.csv").c_str(), F_OK), -1);
  EXPECT_EQ(::access((dir_ + "/run/tensorboard").c_str(), F_OK), -1);
  r = run(train_cmd("run2", "--set train.epochs=1 --set train.tensorboard=maybe"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("config key train.tensorboard (from --set train.tensorboard=maybe) must "
                          "be true or false"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace dpt::testing
