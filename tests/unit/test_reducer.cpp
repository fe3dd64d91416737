// The gradient reducer's bucket layout in one process: reverse parameter order, a small first
// bucket, no state buffers, the whole gradient buffer covered once (as PyTorch DDP's Reducer).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "comm/gradient_reducer.h"
#include "comm/local_communicator.h"

namespace dpt::testing {
namespace {

// dense (128 + 16), batch_norm (gamma 16, beta 16 trainable; moving statistics are state),
// dense_1 (64 + 4): 244 trainable floats, laid out in that order.
Model three_layers() {
  return Model(YAML::Load("input: [8]\nlayers:\n  - dense: {units: 16}\n  - batch_norm: {}\n"
                          "  - dense: {units: 4}\n"),
               "m");
}

TEST(ReducerBuckets, ReverseOrderWithASmallFirstBucket) {
  Model m = three_layers();
  ASSERT_EQ(m.num_trainable(), 244);
  LocalCommunicator comm;
  // First bucket 60 floats, the others 100: dense_1 fills the first (68 >= 60), the rest the
  // second (176 >= 100).
  const GradientReducer r(comm, m, 100 * 4, 60 * 4, true);
  ASSERT_EQ(r.buckets().size(), 2u);
  EXPECT_EQ(r.buckets()[0].offset, 176);
  EXPECT_EQ(r.buckets()[0].size, 68);
  EXPECT_EQ(r.buckets()[0].ready_layer, 2);  // launchable as soon as dense_1's backward is done
  EXPECT_EQ(r.buckets()[1].offset, 0);
  EXPECT_EQ(r.buckets()[1].size, 176);
  EXPECT_EQ(r.buckets()[1].ready_layer, 0);
}

TEST(ReducerBuckets, CoverEveryGradientOnceAndNeverTheState) {
  Model m = three_layers();
  LocalCommunicator comm;
  for (int64_t bytes : {4, 40, 400, 4000}) {
    SCOPED_TRACE(bytes);
    const GradientReducer r(comm, m, bytes, bytes, true);
    int64_t end = m.num_trainable();
    for (const auto& b : r.buckets()) {  // contiguous, from the end of the buffer down
      EXPECT_EQ(b.offset + b.size, end);
      EXPECT_GT(b.size, 0);
      end = b.offset;
    }
    EXPECT_EQ(end, 0);
  }
  // One float per bucket at most: a bucket closes at every parameter.
  EXPECT_EQ(GradientReducer(comm, m, 4, 4, true).buckets().size(), 6u);
}

}  // namespace
}  // namespace dpt::testing
