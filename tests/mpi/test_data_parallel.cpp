// Data-parallel correctness under mpiexec: equivalence with one process, lock-step, uneven shards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>

#include "comm/backend.h"
#include "comm/gradient_reducer.h"
#include "comm/local_communicator.h"
#include "comm/nccl_communicator.h"
#include "data/shards.h"
#include "mpi_env.h"
#include "trainer/config.h"
#include "trainer/data_plan.h"
#include "trainer/optim/optimizers.h"
#include "trainer/train_step.h"
#include "trainer/trainer.h"

namespace dpt::testing {

SharedTempDir::SharedTempDir(const std::string& tag) {
  char name[256] = {0};
  if (g_comm->rank() == 0) {
    std::string tmpl = "/tmp/dpt-mpi-" + tag + "-XXXXXX";
    std::strncpy(name, ::mkdtemp(tmpl.data()), sizeof name - 1);
  }
  g_comm->broadcast(name, sizeof name, 0);
  path_ = name;
}

SharedTempDir::~SharedTempDir() {
  g_comm->barrier();  // no rank still reads from it
  std::error_code ec;
  if (g_comm->rank() == 0 && !path_.empty()) std::filesystem::remove_all(path_, ec);
}

namespace {

const char* kModel = R"(
input: [8, 8, 1]
layers:
  - conv2d: {filters: 4, kernel: 3, activation: relu}
  - max_pool: {pool: 2}
  - flatten: {}
  - dense: {units: 6, activation: tanh}
  - dense: {units: 3}
)";

Batch make_batch(const RawSplit& s, int64_t first, int64_t n) {
  Batch b;
  b.storage = Tensor({n, 8, 8, 1});
  b.x = Tensor::view(b.storage.data(), {n, 8, 8, 1});
  b.y.resize(size_t(n));
  b.n = n;
  for (int64_t i = 0; i < n; ++i) {
    b.y[size_t(i)] = s.labels[size_t(first + i)];
    for (int p = 0; p < 64; ++p)
      b.x.data()[i * 64 + p] = s.images[size_t((first + i) * 64 + p)] / 255.0f;
  }
  return b;
}

// The MPI tests' fixtures: a test of TwoRanks (ThreeRanks) runs only under mpiexec -n 2 (3).
class TwoRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (g_comm->size() != 2) GTEST_SKIP() << "needs exactly 2 ranks";
  }
};
class ThreeRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (g_comm->size() != 3) GTEST_SKIP() << "needs exactly 3 ranks";
  }
};

// One side of a step comparison: kModel (seed 5), its reducer and an optimizer on `device`.
// Distributed sides use tiny buckets, so that several all-reduces overlap backward; a
// one-process side one bucket.
struct StepSide {
  StepSide(Communicator& comm, const OptimizerConfig& oc, bool distributed,
           Device device = Device::kCpu)
      : model(YAML::Load(kModel), distributed ? "dist" : "single") {
    model.initialize(5);
    if (device != Device::kCpu) model.to_device(device);
    reducer = std::make_unique<GradientReducer>(comm, model, distributed ? 64 : 1 << 20,
                                                distributed ? 16 : 1 << 20, true);
    opt = make_optimizer(oc, model.num_trainable(), device);
  }
  StepResult step(const Batch& b, int64_t global_count, const StepContext& ctx) {
    return train_step(model, *reducer, *opt, &b, global_count, ctx, 0.1f);
  }
  Model model;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<Optimizer> opt;
};

// The distributed step's gradients and weights equal the one-process step's.
void expect_same_step(Model& dist, Model& single) {
  for (int64_t i = 0; i < single.num_trainable(); ++i) {
    ASSERT_NEAR(dist.grads().data()[i], single.grads().data()[i],
                1e-6 + 1e-4 * std::fabs(single.grads().data()[i]))
        << "gradient " << i;
    ASSERT_NEAR(dist.weights().data()[i], single.weights().data()[i], 1e-6) << "weight " << i;
  }
}

OptimizerConfig sgd_momentum() {
  OptimizerConfig oc;
  oc.kind = OptimizerKind::kSgd;
  oc.lr = 0.1;
  oc.momentum = 0.9;
  return oc;
}

uint64_t fnv1a(const float* p, int64_t n, uint64_t h = 1469598103934665603ull) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  for (int64_t i = 0; i < n * int64_t(sizeof(float)); ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

TEST_F(TwoRanks, OneStepEqualsOneProcessOnTheConcatenatedBatch) {
  const RawDataset d = synthetic_dataset(16, 0, 3);
  const int64_t b = 4;
  const StepContext ctx{Mode::kTrain, 1, 0, 0};
  // Two ranks, b samples each, against one process on the same 2b samples in one batch.
  StepSide dist(*g_comm, sgd_momentum(), true);
  ASSERT_GT(dist.reducer->buckets().size(), 2u);
  dist.step(make_batch(d.train, g_comm->rank() * b, b), 2 * b, ctx);
  LocalCommunicator local;
  StepSide single(local, sgd_momentum(), false);
  single.step(make_batch(d.train, 0, 2 * b), 2 * b, ctx);
  expect_same_step(dist.model, single.model);
}

TEST_F(TwoRanks, ANonFiniteLossOnOneRankIsEveryRanksVerdict) {
  const RawDataset d = synthetic_dataset(16, 0, 3);
  OptimizerConfig oc;
  oc.kind = OptimizerKind::kAdam;
  Model m(YAML::Load(kModel), "m");
  m.initialize(5);
  GradientReducer reducer(*g_comm, m, 64, 16, true);
  auto opt = make_optimizer(oc, m.num_trainable());
  const std::vector<float> before(m.weights().data(), m.weights().data() + m.weights().size());
  Batch mine = make_batch(d.train, g_comm->rank() * 4, 4);
  if (g_comm->rank() == 1) mine.x.data()[5] = std::numeric_limits<float>::infinity();
  const StepContext ctx{Mode::kTrain, 1, uint32_t(g_comm->rank()), 0};
  const StepResult bad = train_step(m, reducer, *opt, &mine, 8, ctx, 0.01f);
  EXPECT_FALSE(bad.finite) << "rank " << g_comm->rank();
  EXPECT_EQ(opt->iterations(), 0);
  for (size_t i = 0; i < before.size(); ++i) ASSERT_EQ(m.weights().data()[i], before[i]) << i;
  EXPECT_NE(first_non_finite_gradient(m), "");
  // The next, clean step goes through on both ranks.
  const Batch clean = make_batch(d.train, g_comm->rank() * 4, 4);
  EXPECT_TRUE(train_step(m, reducer, *opt, &clean, 8, ctx, 0.01f).finite);
  EXPECT_EQ(opt->iterations(), 1);
}

TEST_F(ThreeRanks, UnevenSplitOfTheGlobalBatchEqualsOneProcessStep) {
  // The global batch of 128 on 3 ranks: 43/43/42, the split the DataPlan makes (checked below
  // on a real plan), each rank on its own consecutive slice of the same 128 samples.
  const SharedTempDir tmp("split");
  const std::string& dir = tmp.path();
  if (g_comm->rank() == 0) write_shards(synthetic_dataset(300, 3, 7), dir + "/data", 3, 1);
  g_comm->barrier();
  DataConfig dc;
  dc.dataset = "mnist";
  dc.dir = dir + "/data";
  const DataPlan plan(dc, 128, g_comm->rank(), 3);
  ASSERT_EQ(plan.batch_of(0), 43);
  ASSERT_EQ(plan.batch_of(1), 43);
  ASSERT_EQ(plan.batch_of(2), 42);
  ASSERT_EQ(plan.global_count_at(0), 128);
  ASSERT_EQ(plan.local_batch(), plan.batch_of(g_comm->rank()));
  int64_t first = 0;
  for (int r = 0; r < g_comm->rank(); ++r) first += plan.batch_of(r);

  const RawDataset d = synthetic_dataset(128, 0, 3);
  const StepContext ctx{Mode::kTrain, 1, 0, 0};
  StepSide dist(*g_comm, sgd_momentum(), true);
  dist.step(make_batch(d.train, first, plan.local_batch()), plan.global_count_at(0), ctx);
  LocalCommunicator local;
  StepSide single(local, sgd_momentum(), false);
  single.step(make_batch(d.train, 0, 128), 128, ctx);
  expect_same_step(dist.model, single.model);
}

Config small_config(const std::string& dir, int64_t batch, int64_t epochs) {
  Config c = parse_config(
      YAML::Load("name: mpi_test\n"
                 "run_dir: " +
                 dir +
                 "/run\n"
                 "data: {dataset: mnist, dir: " +
                 dir +
                 "/data, validation_split: 0.2}\n"
                 "model:\n  input: [8, 8, 1]\n  layers:\n"
                 "    - conv2d: {filters: 4, kernel: 3, padding: same, activation: relu}\n"
                 "    - batch_norm: {}\n"
                 "    - max_pool: {pool: 2}\n"
                 "    - flatten: {}\n"
                 "    - dropout: {rate: 0.3}\n"
                 "    - dense: {units: 3}\n"
                 "train: {epochs: " +
                 std::to_string(epochs) + ", batch_size: " + std::to_string(batch) +
                 ", log_every_steps: 3, bucket_mb: 0.001, first_bucket_mb: 0.0005,"
                 " optimizer: {adam: {lr: 0.01}}}\n"));
  return c;
}

TEST_F(TwoRanks, RanksStayInLockStepAndLearn) {
  const SharedTempDir tmp("lockstep");
  const std::string& dir = tmp.path();
  if (g_comm->rank() == 0) write_shards(synthetic_dataset(400, 90, 11), dir + "/data", 4, 1);
  g_comm->barrier();
  Trainer trainer(small_config(dir, 16, 3), *g_comm);
  const TrainSummary s = trainer.run();
  Model& m = trainer.model();
  uint64_t h = fnv1a(m.weights().data(), m.weights().size());
  h = fnv1a(m.state().data(), m.state().size(), h);
  uint64_t root = h;
  g_comm->broadcast(&root, sizeof root, 0);
  EXPECT_EQ(h, root) << "rank " << g_comm->rank() << " parameters differ from rank 0's";
  EXPECT_EQ(s.test.count, 90);
  EXPECT_GT(s.test.accuracy, 0.8);
}

TEST_F(ThreeRanks, UnevenShardsFinishAndCountEverySampleOnce) {
  const SharedTempDir tmp("uneven");
  const std::string& dir = tmp.path();
  // 4 shards of ~26 on 3 ranks: rank 0 owns shards 0 and 3, ranks 1 and 2 one each.
  if (g_comm->rank() == 0) write_shards(synthetic_dataset(103, 37, 5), dir + "/data", 4, 1);
  g_comm->barrier();
  Trainer trainer(small_config(dir, 6, 2), *g_comm);
  const TrainSummary s = trainer.run();
  EXPECT_EQ(s.test.count, 37);
  int64_t train = 0;
  for (int64_t n : {26, 26, 26, 25}) train += n - int64_t(n * 0.2);
  EXPECT_EQ(s.samples_last_epoch, train);
  int64_t seen = 0;
  for (auto v : s.test.confusion) seen += v;
  EXPECT_EQ(seen, 37);
}

// Two ranks of one node on one GPU are refused by name on both ranks, before NCCL; their own
// GPUs (other UUIDs) or the CPU pass. The check needs no GPU: it compares what it is given.
TEST_F(TwoRanks, TwoRanksOnOneGpuAreRefusedBeforeNccl) {
  try {
    check_one_gpu_per_rank(Device::kCuda, "gpu-uuid-shared", *g_comm);
    ADD_FAILURE() << "rank " << g_comm->rank() << " accepted a shared GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ranks 0 and 1 on host"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("both use GPU gpu-uuid-shared"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(
      check_one_gpu_per_rank(Device::kCuda, "gpu-" + std::to_string(g_comm->rank()), *g_comm));
  EXPECT_NO_THROW(check_one_gpu_per_rank(Device::kCpu, "", *g_comm));
}

// The GPU path on 2 ranks (skips without 2 GPUs on the node).
#define REQUIRE_TWO_GPUS() \
  if (gpu_count() < 2) GTEST_SKIP() << "needs 2 GPUs on this node (found " << gpu_count() << ")"

TEST_F(TwoRanks, NcclAllReduceSumsDeviceBuffers) {
  REQUIRE_TWO_GPUS();
  select_gpu(g_comm->local_rank(), g_comm->local_size());
  auto nccl = make_nccl_communicator(*g_comm);
  std::vector<float> host(1000);
  for (size_t i = 0; i < host.size(); ++i) host[i] = float(i) * float(g_comm->rank() + 1);
  Tensor dev({1000}, Device::kCuda);
  copy_memory(dev.data(), true, host.data(), false, host.size() * sizeof(float));
  nccl->allreduce_sum(dev.data(), host.size())->wait();
  copy_memory(host.data(), false, dev.data(), true, host.size() * sizeof(float));
  for (size_t i = 0; i < host.size(); ++i) ASSERT_FLOAT_EQ(host[i], 3.0f * float(i));
}

// Two GPUs over NCCL, b samples each, against one GPU on the same 2b samples.
TEST_F(TwoRanks, NcclStepEqualsOneGpuOnTheConcatenatedBatch) {
  REQUIRE_TWO_GPUS();
  select_gpu(g_comm->local_rank(), g_comm->local_size());
  const RawDataset d = synthetic_dataset(16, 0, 3);
  const int64_t b = 4;
  OptimizerConfig oc;
  oc.kind = OptimizerKind::kSgd;
  oc.lr = 0.1;
  const StepContext ctx{Mode::kTrain, 1, 0, 0};
  auto on_gpu = [](const Batch& host, Tensor* x, Tensor* y) {
    *x = Tensor(host.x.shape(), Device::kCuda);
    copy_memory(x->data(), true, host.x.data(), false, size_t(host.x.size()) * sizeof(float));
    *y = Tensor({host.n}, Device::kCuda);
    copy_memory(y->data(), true, host.y.data(), false, size_t(host.n) * sizeof(int32_t));
    Batch g;
    g.x = *x;
    g.n = host.n;
    g.y = host.y;
    g.device_labels = reinterpret_cast<const int32_t*>(y->data());
    return g;
  };
  auto nccl = make_nccl_communicator(*g_comm);
  StepSide dist(*nccl, oc, true, Device::kCuda);
  Tensor x1, y1;
  dist.step(on_gpu(make_batch(d.train, g_comm->rank() * b, b), &x1, &y1), 2 * b, ctx);
  LocalCommunicator local;
  StepSide single(local, oc, false, Device::kCuda);
  Tensor x2, y2;
  single.step(on_gpu(make_batch(d.train, 0, 2 * b), &x2, &y2), 2 * b, ctx);
  single.model.download();
  dist.model.download();
  for (int64_t i = 0; i < single.model.num_trainable(); ++i)
    ASSERT_NEAR(dist.model.host_weights().data()[i], single.model.host_weights().data()[i], 1e-5)
        << "weight " << i;
}

}  // namespace
}  // namespace dpt::testing
