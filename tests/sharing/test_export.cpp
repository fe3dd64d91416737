// dptrain export: every zoo model as Keras 3 and ONNX, checked with keras, onnx and onnxruntime.
#include <random>

#include "core/tensor.h"
#include "models/model.h"
#include "sharing_helpers.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"
#include "trainer/optim/optimizers.h"

namespace dpt::testing {
namespace {

// Every layer and option the exporters map, beyond what the zoo uses: strided, biasless and
// rectangular convolutions, 'same' average and max pooling, BatchNorm on a flat input,
// standalone activations (softmax over channels), global average pooling.
const char* kEveryLayer = R"(
name: every_layer
data: {dataset: cifar10}
model:
  input: [32, 32, 3]
  layers:
    - conv2d: {filters: 8, kernel: [3, 5], strides: 2, padding: same, activation: tanh,
               use_bias: false, kernel_initializer: he_normal}
    - batch_norm: {momentum: 0.9, epsilon: 0.01}
    - avg_pool: {pool: 3, strides: 2, padding: same}
    - sigmoid: {}
    - conv2d: {filters: 6, kernel: 2, activation: relu}
    - max_pool: {pool: 2, padding: same}
    - softmax: {}
    - global_avg_pool: {}
    - dense: {units: 16, activation: sigmoid, use_bias: false}
    - batch_norm: {}
    - activation: {fn: relu}
    - gelu: {}
    - dropout: {rate: 0.1}
    - dense: {units: 10, activation: tanh}
    - dense: {units: 10}
    - rescaling: {scale: 0.5, offset: 0.25}
)";

size_t lines_with(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

class Export : public SharingTest {
 protected:
  // A checkpoint of cfg's model: Keras initialisation, then biases, BatchNorm scales, shifts
  // and moving statistics drawn at random, so that each of them is tested.
  std::string random_checkpoint(const Config& cfg) {
    Model model(cfg.model, cfg.name);
    model.initialize(cfg.train.seed);
    std::mt19937 rng(7);
    for (auto& p : model.params()) {
      const std::string& n = p.spec.name;
      const bool scale = n == "gamma" || n == "moving_variance";
      if (n == "kernel") continue;
      std::uniform_real_distribution<float> u(scale ? 0.5f : -0.3f, scale ? 2.0f : 0.3f);
      for (int64_t i = 0; i < p.size(); ++i) p.host_value[i] = u(rng);
    }
    auto opt = make_optimizer(cfg.train.optimizer, model.num_trainable(), Device::kCpu);
    TrainPosition pos;
    pos.seed = cfg.train.seed;
    pos.run_id = "export-test";
    return write_checkpoint(dir_ + "/" + cfg.name, model, *opt, pos, cfg.resolved, 1);
  }
  // Exports ckpt, evaluates it with probabilities; returns the manifest line.
  std::string export_and_eval(const std::string& name, const std::string& ckpt,
                              const std::string& test_file, int64_t params) {
    const std::string base = dir_ + "/" + name;
    RunResult r =
        run(dptrain() + " export " + ckpt + " --keras " + base + ".keras --onnx " + base + ".onnx");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run(dptrain() + " eval " + ckpt + " --data " + test_file + " --predictions " + base +
            ".csv --probabilities");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return name + "\t" + base + ".keras\t" + base + ".onnx\t" + base + ".csv\t" + test_file + "\t" +
           std::to_string(params) + "\n";
  }
};

TEST_F(Export, EveryZooModelPredictsTheSameInKerasAndOnnxruntime) {
  std::string why;
  const std::string py = pyenv_python("keras, jax, onnx, onnxruntime, h5py", &why, keras_env(dir_));
  if (py.empty()) GTEST_SKIP() << why;
  std::string manifest;
  for (const char* name :
       {"mnist_mlp", "mnist_convnet", "mnist_cnn", "mnist_cnn5x5", "mnist_cnn3conv", "cifar10_cnn",
        "cifar10_small", "cifar10_fast", "every_layer"}) {
    const bool extra = std::string(name) == "every_layer";
    std::string path = source_dir() + "/configs/" + name + ".yaml";
    if (extra) write_text(path = dir_ + "/every_layer.yaml", kEveryLayer);
    const std::string dataset =
        std::string(name).rfind("cifar", 0) == 0 || extra ? "cifar10" : "mnist";
    const Config cfg = load_config(path, {"data.dir=" + data(dataset)});
    const Model probe(cfg.model, cfg.name);
    manifest +=
        export_and_eval(name, random_checkpoint(cfg), data(dataset) + "/" + test_file_name(dataset),
                        probe.num_trainable() + probe.num_non_trainable());
  }
  // A trained model too: there every prediction must agree, not only the clear ones.
  RunResult r = run(train_cmd("run", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt =
      trim_newline(run("ls " + dir_ + "/run/checkpoints/ckpt-*.h5 | tail -1").output);
  manifest += export_and_eval("trained_convnet", ckpt, data("mnist") + "/mnist-test.h5", 34826);
  write_text(dir_ + "/manifest.tsv", manifest);
  // Its verdict (exit code): decided argmax equal, probabilities within 1e-4, parameter counts.
  r = run(keras_env(dir_) + py + " " + source_dir() + "/tests/sharing/compare_exports.py " + dir_ +
          "/manifest.tsv");
  std::cout << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lines_with(r.output, " argmax_equal="), 20u) << r.output;
  EXPECT_NE(r.output.find("trained_convnet keras argmax_equal=300/300"), std::string::npos);
  EXPECT_NE(r.output.find("trained_convnet onnx argmax_equal=300/300"), std::string::npos);
}

TEST_F(Export, BadRequestsAreClearErrors) {
  RunResult r = run(train_cmd("run", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt =
      trim_newline(run("ls " + dir_ + "/run/checkpoints/ckpt-*.h5 | tail -1").output);
  r = run(dptrain() + " export " + ckpt);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("give --keras OUT.keras and/or --onnx OUT.onnx"), std::string::npos)
      << r.output;
  r = run(dptrain() + " export " + ckpt + " --keras " + dir_ + "/m.h5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("Keras 3 loads only files ending in .keras"), std::string::npos)
      << r.output;
  r = run(dptrain() + " export " + ckpt + " --onnx " + dir_ + "/no/such/dir/m.onnx");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no/such/dir/m.onnx"), std::string::npos) << r.output;
  r = run(dptrain() + " export " + dir_ + "/nope.h5 --onnx " + dir_ + "/m.onnx");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nope.h5"), std::string::npos) << r.output;
  EXPECT_EQ(run("ls " + dir_ + " | grep -c tmp-").output, "0\n");  // no temporary file left
}

}  // namespace
}  // namespace dpt::testing
