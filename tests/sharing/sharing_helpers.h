// Shared set-up of the sharing tests: small real MNIST/CIFAR-10 files, the test venv's Python.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "data/raw_readers.h"
#include "data/shards.h"
#include "test_helpers.h"

namespace dpt::testing {

// The sharing tests' venv (Note [test locations] in test_helpers.h).
inline std::string pyenv_dir() { return location("DPT_PYENV", DPT_PYENV); }

// Keras on JAX's CPU backend, its settings file in dir (not in $HOME), no GPU probing.
inline std::string keras_env(const std::string& dir) {
  return "KERAS_BACKEND=jax JAX_PLATFORMS=cpu KERAS_HOME=" + dir +
         "/keras-home TF_CPP_MIN_LOG_LEVEL=3 ";
}

// The venv that scripts/setup-pyenv.sh makes (build/pyenv): tensorboard, keras + jax, onnx,
// onnxruntime. "" with *why set when it is missing or lacks a module (the test then skips).
// env: variables for the import check (keras_env() for Keras).
inline std::string pyenv_python(const std::string& modules, std::string* why,
                                const std::string& env = "") {
  const std::string py = pyenv_dir() + "/bin/python";
  if (::access(py.c_str(), X_OK) != 0) {
    *why = "no Python venv at " + pyenv_dir() + ": run bash scripts/setup-pyenv.sh " + pyenv_dir() +
           " (needs PyPI)";
    return "";
  }
  const RunResult r = run(env + py + " -c 'import " + modules + "'");
  if (r.exit_code != 0) {
    *why = "the venv " + pyenv_dir() + " cannot import " + modules + " (" +
           r.output.substr(0, 300) + "): run bash scripts/setup-pyenv.sh " + pyenv_dir();
    return "";
  }
  return py;
}

// The first n samples of a split.
inline RawSplit first(const RawSplit& s, int64_t n, int64_t sample_bytes) {
  RawSplit out;
  out.n = std::min(n, s.n);
  out.images.assign(s.images.begin(), s.images.begin() + out.n * sample_bytes);
  out.labels.assign(s.labels.begin(), s.labels.begin() + out.n);
  return out;
}

// Small real MNIST (1000 train, 300 test) and CIFAR-10 (256 train, 300 test) in dptrain's
// shard layout (2 train shards), made from the raw files on first use in a test program
// (ctest runs each test in its own process).
class SharingTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { data_.reset(); }
  static std::string data(const std::string& name) {
    if (!data_) data_ = std::make_unique<TempDir>("sharing-data");
    const std::string dir = data_->path() + "/" + name;
    if (::access(dir.c_str(), F_OK) == 0) return dir;
    RawDataset raw = read_raw_dataset(name, datasets() + "/" + name, false);
    const int64_t sb = raw.height * raw.width * raw.channels;
    raw.train = first(raw.train, name == "mnist" ? 1000 : 256, sb);
    raw.test = first(raw.test, 300, sb);
    write_shards(raw, dir, 2, 1);
    return dir;
  }
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("sharing");
    dir_ = tmp_->path();
  }
  // A short mnist_convnet run in dir_/<run_name>: 9 steps per epoch, a row every 3 steps.
  std::string train_cmd(const std::string& run_name, const std::string& extra) const {
    return dptrain() + " train " + source_dir() +
           "/configs/mnist_convnet.yaml --set data.dir=" + data("mnist") +
           " --set run_dir=" + dir_ + "/" + run_name +
           " --set data.max_train_samples=320 --set train.batch_size=64"
           " --set train.log_every_steps=3 " +
           extra;
  }
  static inline std::unique_ptr<TempDir> data_;
  std::unique_ptr<TempDir> tmp_;
  std::string dir_;
};

}  // namespace dpt::testing
