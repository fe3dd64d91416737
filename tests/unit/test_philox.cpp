// Philox4x32-10 against the Random123 known-answer vectors, and stream properties.
#include <gtest/gtest.h>

#include "core/philox.h"

namespace dpt {
namespace {

TEST(Philox, KnownAnswers) {
  using B = Philox::Block;
  EXPECT_EQ(Philox::generate({0, 0, 0, 0}, 0, 0),
            (B{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(
      Philox::generate({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff),
      (B{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      Philox::generate({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0),
      (B{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, UniformMeanAndBelowRange) {
  PhiloxStream s(42, 0, 0, 1);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) sum += s.uniform();
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(s.below(7), 7u);
}

}  // namespace
}  // namespace dpt
