// The CPU check before main (Note [cpu baseline]): what a CPU below the build's x86-64 level is
// told, which features each level needs, and that this CPU passes the level dptrain runs at.
#include <gtest/gtest.h>

#include <string>

#include "core/cpu_info.h"

namespace dpt::testing {
namespace {

std::string message(unsigned present, const char* march, int* count = nullptr) {
  char buf[1024];
  const int n = cpu_baseline_message("Intel(R) Xeon(R) CPU E5-2670 (family 6 model 45)", present,
                                     cpu_features_required(march), march, buf, sizeof buf);
  if (count) *count = n;
  return buf;
}

TEST(CpuBaseline, ACpuWithoutAvx2IsToldWhatItLacksInOneSentence) {
  // A Sandy Bridge: AVX but no AVX2, FMA, BMI, F16C, MOVBE or LZCNT.
  const unsigned sandy_bridge = cpu_features_required("x86-64-v2") | kCpuAvx;
  int count = 0;
  const std::string m = message(sandy_bridge, "x86-64-v3", &count);
  EXPECT_EQ(count, 7);
  EXPECT_EQ(m.rfind("dptrain: error: this CPU (Intel(R) Xeon(R) CPU E5-2670 (family 6 model 45)) "
                    "lacks AVX2, FMA, BMI1, BMI2, F16C, MOVBE, LZCNT, which this dptrain needs: "
                    "it was built for x86-64-v3",
                    0),
            0u)
      << m;
  // The rebuild it suggests is for the level this CPU reaches.
  EXPECT_NE(m.find("rebuild for this one with 'bash scripts/build.sh -DDPT_MARCH=x86-64-v2'"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find('\n'), m.size() - 1) << "one line: " << m;
}

TEST(CpuBaseline, OnlyTheMissingFeaturesAreNamed) {
  const unsigned v3 = cpu_features_required("x86-64-v3");
  int count = 0;
  const std::string m = message(v3 & ~(kCpuAvx2 | kCpuFma), "x86-64-v3", &count);
  EXPECT_EQ(count, 2);
  EXPECT_NE(m.find("lacks AVX2, FMA, which"), std::string::npos) << m;
  EXPECT_EQ(message(v3, "x86-64-v3", &count), "");
  EXPECT_EQ(count, 0);
  // An AVX2 CPU below a v4 build lacks the AVX-512 sets, and is told to rebuild for v3.
  const std::string v4 = message(v3, "x86-64-v4");
  EXPECT_NE(v4.find("lacks AVX512F, AVX512BW, AVX512CD, AVX512DQ, AVX512VL"), std::string::npos)
      << v4;
  EXPECT_NE(v4.find("-DDPT_MARCH=x86-64-v3"), std::string::npos) << v4;
  // Below every level: the plain x86-64 build.
  EXPECT_NE(message(kCpuSse3, "x86-64-v2").find("-DDPT_MARCH=x86-64'"), std::string::npos);
}

TEST(CpuBaseline, LevelsNestAndUnknownOnesRequireNothing) {
  const unsigned v2 = cpu_features_required("x86-64-v2"), v3 = cpu_features_required("x86-64-v3"),
                 v4 = cpu_features_required("x86-64-v4");
  EXPECT_EQ(v2 & v3, v2);
  EXPECT_EQ(v3 & v4, v3);
  EXPECT_NE(v3 & kCpuAvx2, 0u);
  EXPECT_EQ(v2 & kCpuAvx2, 0u);
  EXPECT_EQ(cpu_features_required("native"), 0u);
  EXPECT_EQ(cpu_features_required(""), 0u);
}

TEST(CpuBaseline, ThisCpuHasEveryFeatureOfX8664V3) {
  // Every CPU this suite is meant for (AVX2 and up); the binary would not have started otherwise.
  const unsigned v3 = cpu_features_required("x86-64-v3");
  EXPECT_EQ(cpu_features_present() & v3, v3);
  EXPECT_NE(cpu_description(), "unknown CPU");
}

}  // namespace
}  // namespace dpt::testing
