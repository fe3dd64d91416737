// dptrain plot: curves, confusion matrix and worst test images as real PNG files.
#include "sharing_helpers.h"

namespace dpt::testing {
namespace {

struct PngSize {
  bool valid = false;
  uint32_t width = 0, height = 0;
};

// The PNG signature, then the IHDR chunk (length 13) with big-endian width and height.
PngSize png_size(const std::string& path) {
  const std::string b = read_file(path);
  PngSize s;
  if (b.size() < 33 || b.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) != 0 ||
      b.compare(12, 4, "IHDR") != 0)
    return s;
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = v << 8 | uint8_t(b[at + i]);
    return v;
  };
  s.valid = be32(8) == 13;
  s.width = be32(16);
  s.height = be32(20);
  return s;
}

class Plot : public SharingTest {
 protected:
  void SetUp() override {
    SharingTest::SetUp();
    const RunResult r = run("/usr/bin/python3 -c 'import matplotlib, numpy, h5py'");
    if (r.exit_code != 0)
      why_ =
          "Debian's python3-matplotlib/python3-h5py are missing: "
          "bash scripts/install-deps.sh (" +
          r.output + ")";
  }
  std::string why_;
};

TEST_F(Plot, WritesCurvesConfusionAndWorstImages) {
  if (!why_.empty()) GTEST_SKIP() << why_;
  RunResult r = run(train_cmd("run", "--set train.epochs=3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(dptrain() + " plot " + dir_ + "/run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("confusion matrix"), std::string::npos) << r.output;  // eval's report
  const std::string out = dir_ + "/run/plots/";
  for (const char* name : {"curves.png", "confusion.png", "misclassified.png"}) {
    const PngSize s = png_size(out + name);
    ASSERT_TRUE(s.valid) << name << " is not a PNG";
    EXPECT_GE(s.width, 600u) << name;
    EXPECT_LE(s.width, 2000u) << name;
    EXPECT_GE(s.height, 300u) << name;
    EXPECT_LE(s.height, 2000u) << name;
    EXPECT_NE(r.output.find("wrote " + out + name), std::string::npos) << r.output;
  }
  // The predictions it plotted: dptrain eval's columns, then a probability per class.
  const std::string csv = read_file(out + "predictions.csv");
  EXPECT_EQ(csv.rfind("index,label,predicted,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9\n0,7,", 0), 0u)
      << csv.substr(0, 200);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 301);

  // --out elsewhere, another checkpoint, and a run without checkpoints: curves only.
  r = run(dptrain() + " plot " + dir_ + "/run --out " + dir_ + "/p2 --checkpoint " + dir_ +
          "/run/checkpoints/ckpt-0002-00000018.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(png_size(dir_ + "/p2/misclassified.png").valid);
  ASSERT_EQ(run("rm -r " + dir_ + "/run/checkpoints").exit_code, 0);
  r = run(dptrain() + " plot " + dir_ + "/run --out " + dir_ + "/p3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("has no checkpoint: only curves.png"), std::string::npos) << r.output;
  EXPECT_TRUE(png_size(dir_ + "/p3/curves.png").valid);
  EXPECT_NE(::access((dir_ + "/p3/confusion.png").c_str(), F_OK), 0);
}

TEST_F(Plot, NotARunDirectoryIsAClearError) {
  const RunResult r = run(dptrain() + " plot " + dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("has no metrics.csv"), std::string::npos) << r.output;
}

TEST_F(Plot, EvalProbabilitiesNeedPredictions) {
  const RunResult r = run(dptrain() + " eval x.h5 --probabilities");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("give --predictions OUT.csv too"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dpt::testing
