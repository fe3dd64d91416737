// Data pipeline: prepare -> read round trip on real MNIST and CIFAR-10, and refusal of bad raw
// files and shards.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "data/batches.h"
#include "data/hdf5_util.h"
#include "data/raw_readers.h"
#include "data/shards.h"
#include "test_helpers.h"

namespace dpt::testing {
namespace {

std::string mnist_raw() { return datasets() + "/mnist"; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Writes bytes as a plain (uncompressed) file, the way a user may have unpacked them.
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

class MnistRoundTrip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    raw_ = new RawDataset(read_raw_dataset("mnist", mnist_raw(), true));
    dir_ = new std::string(temp_dir("shards"));
    write_shards(*raw_, *dir_, 3, 1234);
  }
  static void TearDownTestSuite() {
    delete raw_;
    remove_tree(*dir_);
    delete dir_;
  }
  static RawDataset* raw_;
  static std::string* dir_;
};
RawDataset* MnistRoundTrip::raw_ = nullptr;
std::string* MnistRoundTrip::dir_ = nullptr;

TEST_F(MnistRoundTrip, CountsAndHistogramsMatchTheOfficialFiles) {
  const auto files = find_train_shards(*dir_, "mnist");
  ASSERT_EQ(files.size(), 3u);
  const ShardData train = load_shards(files, "mnist");
  EXPECT_EQ(train.n, 60000);
  const std::vector<int64_t> want_train{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
  std::vector<int64_t> hist(10, 0);
  for (auto l : train.labels) hist[l]++;
  EXPECT_EQ(hist, want_train);
  const ShardData test = load_shards({*dir_ + "/mnist-test.h5"}, "mnist");
  EXPECT_EQ(test.n, 10000);
  const std::vector<uint8_t> first{7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
  EXPECT_TRUE(std::equal(first.begin(), first.end(), test.labels.begin()));
  EXPECT_EQ(test.images, raw_->test.images);  // the test file keeps the official order
}

TEST_F(MnistRoundTrip, ChosenTrainSamplesKeepTheirBytesAndLabels) {
  const ShardData train = load_shards(find_train_shards(*dir_, "mnist"), "mnist");
  for (int64_t i : {0, 1, 777, 31337, 59999}) {
    const uint8_t* want = raw_->train.images.data() + i * 784;
    bool found = false;
    for (int64_t j = 0; j < train.n && !found; ++j)
      found = std::memcmp(train.images.data() + j * 784, want, 784) == 0 &&
              train.labels[size_t(j)] == raw_->train.labels[size_t(i)];
    EXPECT_TRUE(found) << "raw train sample " << i << " is not in the shards";
  }
  // Shards are a fair sample: each holds every class.
  const ShardData one = load_shards({find_train_shards(*dir_, "mnist")[0]}, "mnist");
  EXPECT_EQ(one.n, 20000);
  std::vector<int64_t> hist(10, 0);
  for (auto l : one.labels) hist[l]++;
  for (auto h : hist) EXPECT_GT(h, 1500);
}

TEST_F(MnistRoundTrip, AttributesFollowTheLayout) {
  const std::string f = find_train_shards(*dir_, "mnist")[1];
  h5::Handle h = h5::open_file(f);
  EXPECT_EQ(h5::get_attr_string(h, "dataset", f), "mnist");
  EXPECT_EQ(h5::get_attr_string(h, "split", f), "train");
  EXPECT_EQ(h5::get_attr_int(h, "shard", f), 1);
  EXPECT_EQ(h5::get_attr_int(h, "num_shards", f), 3);
  EXPECT_EQ(h5::get_attr_int(h, "num_samples", f), 20000);
  EXPECT_EQ(h5::get_attr_int(h, "classes", f), 10);
  EXPECT_EQ(h5::get_attr_int(h, "format_version", f), kShardFormatVersion);
  EXPECT_NE(h5::get_attr_string(h, "source_md5", f).find("6bbc9ace898e44ae57da46a324031adb"),
            std::string::npos);
  EXPECT_EQ(h5::dims_of(h, "images", f), (std::vector<hsize_t>{20000, 28, 28, 1}));
}

TEST_F(MnistRoundTrip, BatchesAreNormalisedAndPrefetchedInOrder) {
  const ShardData test = load_shards({*dir_ + "/mnist-test.h5"}, "mnist");
  Prefetcher pf(test, 32, 3);
  std::vector<int64_t> order(100);
  std::iota(order.begin(), order.end(), 0);
  pf.start(order, 32, 0, 4, AugmentSpec{}, 1, 0, 0);
  for (int s = 0; s < 4; ++s) {
    const Batch& b = pf.next();
    ASSERT_EQ(b.n, s < 3 ? 32 : 4);
    for (int64_t i = 0; i < b.n; ++i) {
      EXPECT_EQ(b.y[size_t(i)], test.labels[size_t(s * 32 + i)]);
      EXPECT_FLOAT_EQ(b.x.data()[i * 784 + 400],
                      test.images[size_t((s * 32 + i) * 784 + 400)] / 255.0f);
    }
  }
}

TEST(RawFiles, TruncatedGzipIsRefused) {
  const TempDir tmp("raw");
  const std::string& dir = tmp.path();
  const auto bytes = read_maybe_gzip(mnist_raw() + "/t10k-images-idx3-ubyte.gz");
  std::ifstream in(mnist_raw() + "/t10k-images-idx3-ubyte.gz", std::ios::binary);
  std::vector<char> gz((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir + "/cut.gz", std::ios::binary).write(gz.data(), std::streamsize(gz.size() / 2));
  const auto e = error_of([&] { read_maybe_gzip(dir + "/cut.gz"); });
  EXPECT_NE(e.find("cut.gz"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST(RawFiles, TruncatedMissingAndWrongMagicAreRefused) {
  const auto images = read_maybe_gzip(mnist_raw() + "/t10k-images-idx3-ubyte.gz");
  const auto labels = read_maybe_gzip(mnist_raw() + "/t10k-labels-idx1-ubyte.gz");
  std::vector<uint8_t> cut(images.begin(), images.end() - 1000);
  auto e = error_of([&] { parse_idx_pair(cut, labels, "imgs", "labs", 10); });
  EXPECT_NE(e.find("imgs"), std::string::npos);
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  std::vector<uint8_t> bad = images;
  bad[3] = 0x01;
  e = error_of([&] { parse_idx_pair(bad, labels, "imgs", "labs", 10); });
  EXPECT_NE(e.find("magic"), std::string::npos) << e;
  const TempDir empty("empty");
  e = error_of([&] { read_raw_dataset("mnist", empty.path(), true); });
  EXPECT_NE(e.find("train-images-idx3-ubyte"), std::string::npos) << e;
  EXPECT_NE(e.find("not found"), std::string::npos) << e;
}

TEST(RawFiles, MislabelledAndAlteredFilesAreRefused) {
  const TempDir tmp("raw");
  const std::string& dir = tmp.path();
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    write_bytes(dir + "/" + f, read_maybe_gzip(mnist_raw() + "/" + f + ".gz"));
  EXPECT_EQ(read_raw_dataset("mnist", dir, true).train.n, 60000);  // plain files are fine
  auto labels = read_maybe_gzip(mnist_raw() + "/t10k-labels-idx1-ubyte.gz");
  labels[8 + 5] = 12;
  write_bytes(dir + "/t10k-labels-idx1-ubyte", labels);
  auto e = error_of([&] { read_raw_dataset("mnist", dir, true); });
  EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
  e = error_of([&] { read_raw_dataset("mnist", dir, false); });  // structure still checked
  EXPECT_NE(e.find("label 5 is 12"), std::string::npos) << e;
}

TEST(RawFiles, CifarTarballReadsWithOfficialCounts) {
  const RawDataset d = read_raw_dataset("cifar10", datasets() + "/cifar10", true);
  EXPECT_EQ(d.train.n, 50000);
  EXPECT_EQ(d.test.n, 10000);
  std::vector<int64_t> hist(10, 0);
  for (auto l : d.test.labels) hist[l]++;
  EXPECT_EQ(hist, std::vector<int64_t>(10, 1000));
  EXPECT_EQ(d.test.images.size(), 10000u * 32 * 32 * 3);
}

TEST(Hdf5Errors, NameTheSourceFileRelativeToTheRepository) {
  // file:line helps a bug report; the build machine's absolute path only leaks.
  const auto e = error_of([&] { h5::create_file("/nonexistent-dir-of-dptrain/x.h5"); });
  EXPECT_NE(e.find("[HDF5 call failed at data/hdf5_util.cpp:"), std::string::npos) << e;
  EXPECT_EQ(e.find(source_dir()), std::string::npos) << e;
}

class BadShards : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_dir("bad"); }
  void TearDown() override { remove_tree(dir_); }
  std::string write(const std::string& name, std::vector<hsize_t> dims, std::vector<uint8_t> labels,
                    const std::string& dataset = "mnist") {
    const std::string path = dir_ + "/" + name;
    h5::Handle f = h5::create_file(path);
    hsize_t total = 1;
    for (auto d : dims) total *= d;
    std::vector<uint8_t> images(total, 0);
    h5::write_u8(f, "images", dims, images.data(), 0);
    h5::write_u8(f, "labels", {hsize_t(labels.size())}, labels.data(), 0);
    h5::set_attr(f, "dataset", dataset);
    h5::set_attr(f, "format_version", int64_t{1});
    h5::set_attr(f, "classes", int64_t{10});
    h5::set_attr(f, "num_samples", int64_t(dims[0]));
    return path;
  }
  std::string dir_;
};

TEST_F(BadShards, WrongShapeIsRefused) {
  const auto p = write("mnist-train-00000-of-00001.h5", {2, 28, 28}, {1, 2});
  const auto e = error_of([&] { load_shards({p}, "mnist"); });
  EXPECT_NE(e.find(p), std::string::npos) << e;
  EXPECT_NE(e.find("'images' has 3 dimensions"), std::string::npos) << e;
}

TEST_F(BadShards, LabelOutOfRangeIsRefused) {
  const auto p = write("mnist-train-00000-of-00001.h5", {3, 28, 28, 1}, {1, 10, 2});
  const auto e = error_of([&] { load_shards({p}, "mnist"); });
  EXPECT_NE(e.find("sample 1 has label 10"), std::string::npos) << e;
}

TEST_F(BadShards, OtherDatasetAndMissingShardsAreRefused) {
  const auto p = write("mnist-train-00000-of-00002.h5", {1, 28, 28, 1}, {1}, "cifar10");
  auto e = error_of([&] { load_shards({p}, "mnist"); });
  EXPECT_NE(e.find("holds dataset 'cifar10'"), std::string::npos) << e;
  write("mnist-train-00001-of-00003.h5", {1, 28, 28, 1}, {1});
  e = error_of([&] { find_train_shards(dir_, "mnist"); });
  EXPECT_NE(e.find("incomplete or mixed"), std::string::npos) << e;
}

TEST_F(BadShards, TruncatedFileIsRefused) {
  const auto p =
      write("mnist-train-00000-of-00001.h5", {100, 28, 28, 1}, std::vector<uint8_t>(100, 1));
  ::truncate(p.c_str(), 4000);
  const auto e = error_of([&] { load_shards({p}, "mnist"); });
  EXPECT_NE(e.find(p), std::string::npos) << e;
}

}  // namespace
}  // namespace dpt::testing
