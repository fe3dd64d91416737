// Shared set-up of the fault tests: MNIST shards prepared once, small runs, file surgery helpers.
#pragma once
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "data/hdf5_util.h"
#include "test_helpers.h"

namespace dpt::testing {

const std::string kMpirun = kMpiEnv + "timeout 120 mpirun --oversubscribe ";

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// md5sum of every file under dir (hidden ones included), for "nothing changed" checks.
inline std::string snapshot(const std::string& dir) {
  return run("cd " + dir + " && find . -type f | sort | xargs -r md5sum").output;
}

// Byte offset and size of the first chunk of a chunked dataset (where its data lives).
inline std::pair<hsize_t, hsize_t> chunk_location(const std::string& file, const std::string& ds) {
  h5::Handle f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  h5::Handle d(H5Dopen2(f, ds.c_str(), H5P_DEFAULT), H5Dclose);
  haddr_t addr = 0;
  hsize_t size = 0;
  unsigned mask = 0;
  h5::Handle space(H5Dget_space(d), H5Sclose);
  EXPECT_GE(H5Dget_chunk_info(d, space, 0, nullptr, &mask, &addr, &size), 0) << ds;
  return {hsize_t(addr), size};
}

// Overwrites one byte at offset with its complement.
inline void flip_byte(const std::string& file, hsize_t offset) {
  std::string bytes = read_file(file);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = char(~bytes[offset]);
  write_file(file, bytes);
}

// A small filesystem of `kib` KiB at dir (tmpfs), unmounted in the destructor; skips the test
// where mounting is not allowed (not root, no CAP_SYS_ADMIN).
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, int kib) : dir_(dir) {
    run("mkdir -p " + dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0,
                       ("size=" + std::to_string(kib) + "k").c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// MNIST in 2 shards, prepared once per test program; every test gets its own directory.
class FaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (data_) return;
    data_ = new TempDir("faults-data");
    const auto r = run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " +
                       data_->path() + "/data --shards 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  static std::string data() { return data_->path() + "/data"; }
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("faults");
    dir_ = tmp_->path();
  }
  // A short mnist_convnet run (600 samples, 10 steps per epoch) in dir_/<run>.
  std::string train_cmd(const std::string& run_name, const std::string& extra, int ranks = 1,
                        const std::string& data_dir = "") const {
    return (ranks > 1 ? kMpirun + "-np " + std::to_string(ranks) + " " : std::string()) +
           dptrain() + " train " + source_dir() +
           "/configs/mnist_convnet.yaml --set data.dir=" + (data_dir.empty() ? data() : data_dir) +
           " --set run_dir=" + dir_ + "/" + run_name +
           " --set data.max_train_samples=300 --set data.max_test_samples=200"
           " --set train.batch_size=64 --set train.log_every_steps=2 " +
           extra;
  }
  // `dptrain prepare mnist` of the offline MNIST into out; extra: more options.
  static std::string prepare_cmd(const std::string& out, int shards,
                                 const std::string& extra = "") {
    return dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + out + " --shards " +
           std::to_string(shards) + (extra.empty() ? "" : " " + extra);
  }
  std::string ckpt_dir(const std::string& run_name) const {
    return dir_ + "/" + run_name + "/checkpoints";
  }
  std::string newest(const std::string& run_name) const;
  inline static TempDir* data_ = nullptr;
  std::unique_ptr<TempDir> tmp_;
  std::string dir_;
};

// Counts occurrences of `what`.
inline size_t lines_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

inline std::string FaultTest::newest(const std::string& run_name) const {
  return trim(run("ls " + ckpt_dir(run_name) + "/ckpt-*.h5 2>/dev/null | tail -1").output);
}

}  // namespace dpt::testing
