// Faults, items 6-8: prepare never destroys the previous dataset; checks come first and say the
// right thing; exit codes follow the documented table.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fault_helpers.h"

namespace dpt::testing {
namespace {

class Prepare : public FaultTest {};

TEST_F(Prepare, KilledPrepareLeavesThePreviousDatasetIntact) {
  const std::string out = dir_ + "/d";
  ASSERT_EQ(run(prepare_cmd(out, 2)).exit_code, 0);
  const std::string before = snapshot(out);
  const pid_t pid = spawn_shell("exec " + prepare_cmd(out, 5) + " > /dev/null");
  // Kill it once its first new shard is on disk (in its staging folder beside --out).
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const std::string tmp = dir_ + "/.d.prepare-" + std::string(host) + "-" + std::to_string(pid);
  bool writing = false;
  for (int i = 0; i < 2000 && !writing; ++i) {
    writing = run("ls " + tmp + "/mnist-train-00000-of-00005.h5").exit_code == 0;
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(writing) << "prepare finished before it could be killed";
  EXPECT_EQ(run("ls " + out + "/*.h5 | wc -l").output, "3\n");
  const auto v = run(dptrain() + " verify " + out + "/*.h5");
  EXPECT_EQ(v.exit_code, 0) << v.output;
  // The next prepare clears the dead one's folder.
  ASSERT_EQ(run(prepare_cmd(out, 3)).exit_code, 0);
  EXPECT_EQ(run("ls -a " + out + " " + dir_ + " | grep -c prepare").output, "0\n");
  EXPECT_NE(snapshot(out), before);
}

TEST_F(Prepare, FullDiskKeepsThePreviousDatasetAndNoTemporaryFolder) {
  SmallDisk disk(dir_ + "/small", 16 * 1024);  // the old dataset (~12 MB) fits, not a second copy
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const std::string out = dir_ + "/small/d";
  ASSERT_EQ(run(prepare_cmd(out, 2)).exit_code, 0);
  const std::string before = snapshot(out);
  const auto r = run(prepare_cmd(out, 4));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is full"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(out), before);
  EXPECT_EQ(run("ls -a " + out + " " + dir_ + "/small | grep -c prepare").output, "0\n");
}

class Checks : public FaultTest {};

TEST_F(Checks, MissingTestFileIsFoundBeforeTraining) {
  run("cp -r " + data() + " " + dir_ + "/d && rm " + dir_ + "/d/mnist-test.h5");
  const auto r = run(train_cmd("run", "--set train.epochs=1", 1, dir_ + "/d"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(dir_ + "/d/mnist-test.h5"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 1/"), std::string::npos) << "trained before checking:\n"
                                                          << r.output;
}

TEST_F(Checks, UnwritablePredictionsPathIsFoundBeforeEvaluating) {
  auto r = run(train_cmd("run", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run(dptrain() + " eval " + newest("run") + " --data " + data() +
          "/mnist-test.h5 --predictions " + dir_ + "/no/such/dir/p.csv");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot write the predictions file '" + dir_ + "/no/such/dir/p.csv'"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("accuracy:"), std::string::npos) << r.output;
}

TEST_F(Checks, EmptyShardIsRefusedByName) {
  const std::string d = dir_ + "/d";
  run("mkdir -p " + d);
  const std::string path = d + "/mnist-test.h5";
  {
    h5::Handle f = h5::create_file(path);
    h5::write_u8(f, "images", {0, 28, 28, 1}, nullptr, 0);
    h5::write_u8(f, "labels", {0}, nullptr, 0);
    h5::set_attr(f, "dataset", std::string("mnist"));
    h5::set_attr(f, "split", std::string("test"));
    h5::set_attr(f, "format_version", int64_t{2});
    h5::set_attr(f, "classes", int64_t{10});
    h5::set_attr(f, "num_samples", int64_t{0});
  }
  const auto r = run(dptrain() + " verify " + path);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("'" + path + "' holds no samples"), std::string::npos) << r.output;
}

TEST_F(Checks, MissingShardIsNamed) {
  const std::string d = dir_ + "/d";
  ASSERT_EQ(
      run(dptrain() + " prepare mnist --raw " + datasets() + "/mnist --out " + d + " --shards 3")
          .exit_code,
      0);
  run("rm " + d + "/mnist-train-00001-of-00003.h5");
  const auto r = run(train_cmd("run", "--set train.epochs=1", 1, d));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train shard '" + d +
                          "/mnist-train-00001-of-00003.h5' is missing (found 2 of 3)"),
            std::string::npos)
      << r.output;
}

TEST_F(Checks, ShardsWrittenByH5pyWithVariableLengthStringsLoad) {
  // h5py writes str attributes as variable-length UTF-8 strings; a user's own shards use it.
  const std::string d = dir_ + "/d";
  run("mkdir -p " + d);
  const std::string script =
      "import h5py, numpy as np\n"
      "src = h5py.File('" +
      data() +
      "/mnist-test.h5', 'r')\n"
      "for name in ['mnist-train-00000-of-00001.h5', 'mnist-test.h5']:\n"
      "    with h5py.File('" +
      d +
      "/' + name, 'w') as f:\n"
      "        f['images'] = src['images'][:500]\n"
      "        f['labels'] = src['labels'][:500]\n"
      "        f.attrs['dataset'] = 'mnist'\n"
      "        f.attrs['split'] = 'train'\n"
      "        f.attrs['classes'] = 10\n"
      "        f.attrs['num_samples'] = 500\n"
      "        f.attrs['format_version'] = 1\n";
  write_file(dir_ + "/w.py", script);
  const auto py = run("/usr/bin/python3 " + dir_ + "/w.py");
  if (py.exit_code != 0) GTEST_SKIP() << "python3-h5py is not installed: " << py.output;
  const auto r = run(train_cmd("run", "--set train.epochs=1", 1, d));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("written before checksums"), std::string::npos) << r.output;
}

TEST_F(Checks, AMissingOptimizerDatasetIsDamageNotAnotherOptimizer) {
  auto r = run(train_cmd("run", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string holed = dir_ + "/holed.h5";
  run("cp " + newest("run") + " " + holed);
  {
    h5::Handle f(H5Fopen(holed.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(H5Ldelete(f, "/optimizer/v/dense/bias", H5P_DEFAULT), 0);
  }
  r = run(train_cmd("run", "--set train.epochs=2 --resume " + holed));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("has no dataset '/optimizer/v/dense/bias': the file is damaged"),
            std::string::npos)
      << r.output;
  r = run(train_cmd("run",
                    "--set train.epochs=2 --set 'train.optimizer={sgd: {lr: 0.1, momentum: 0.9}}' "
                    "--resume " +
                        newest("run")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no optimizer state 'velocity' (it holds: m v): it was written with "
                          "another optimizer"),
            std::string::npos)
      << r.output;
}

TEST_F(Checks, SetErrorsNameTheSetTextNotALineOfTheFile) {
  const auto r = run(train_cmd("run", "--set train.epochs=many"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train.epochs (from --set train.epochs=many) must be an integer"),
            std::string::npos)
      << r.output;
}

class ExitCodes : public FaultTest {};

TEST_F(ExitCodes, SigtermToARankCheckpointsAndExits75) {
  const std::string cmd = train_cmd("run",
                                    "--set train.epochs=30 --set checkpoint.every_epochs=0"
                                    " --set data.max_train_samples=3000");
  const pid_t pid = spawn_shell("exec " + cmd + " > " + dir_ + "/out.txt 2>&1");
  for (int i = 0; i < 400 && read_file(dir_ + "/out.txt").find("Epoch 1/") == std::string::npos;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status)) << read_file(dir_ + "/out.txt");
  EXPECT_EQ(WEXITSTATUS(status), 75) << read_file(dir_ + "/out.txt");
  EXPECT_NE(newest("run"), "");
}

}  // namespace
}  // namespace dpt::testing
