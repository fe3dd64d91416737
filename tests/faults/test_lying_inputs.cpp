// Faults, round two: files that lie (no checksums, wrong dtypes, huge dataspaces, two prepares
// mixed), the prepare swap, ranks that disagree, signals and pipes, and messages that name
// the fix.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fault_helpers.h"

namespace dpt::testing {
namespace {

class LyingInputs : public FaultTest {
 protected:
  // Small datasets: these tests prepare several.
  static std::string prepare_cmd(const std::string& out, int shards) {
    return FaultTest::prepare_cmd(out, shards, "--max-train-samples 600 --max-test-samples 200");
  }
  // The command fails (exit 1) saying `says`.
  static void expect_refusal(const std::string& cmd, const std::string& says) {
    const auto r = run(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << r.output;
  }
  // A copy of the prepared data that a test may change.
  std::string copy_of_data() const {
    run("cp -r " + data() + " " + dir_ + "/data");
    return dir_ + "/data";
  }
  // Rewrites dataset `name` of `file` with another HDF5 type and the same values (or shape).
  static void rewrite_dataset(const std::string& file, const std::string& name, hid_t type,
                              const std::vector<hsize_t>& dims, const std::vector<double>& values) {
    h5::Handle f(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(H5Ldelete(f, name.c_str(), H5P_DEFAULT), 0);
    h5::Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
    h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
    H5Pset_fletcher32(dcpl);
    h5::Handle ds(H5Dcreate2(f, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                  H5Dclose);
    ASSERT_GE(ds.get(), 0);
    if (!values.empty()) {
      ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    }
  }
};

TEST_F(LyingInputs, FilesRewrittenWithoutChecksumsAreRefused) {
  auto r = run(train_cmd("R", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ck = newest("R"), bare = dir_ + "/bare.h5";
  ASSERT_EQ(run("h5repack -f NONE " + ck + " " + bare).exit_code, 0);
  expect_refusal(dptrain() + " verify " + bare, "carries no Fletcher32 checksum");
  expect_refusal(train_cmd("R", "--set train.epochs=2 --resume " + bare),
                 "carries no Fletcher32 checksum");
  // A shard likewise.
  const std::string d = copy_of_data(), shard = d + "/mnist-train-00000-of-00002.h5";
  ASSERT_EQ(run("h5repack -f NONE " + shard + " " + dir_ + "/s.h5 && mv " + dir_ + "/s.h5 " + shard)
                .exit_code,
            0);
  expect_refusal(train_cmd("S", "--set train.epochs=1", 1, d),
                 "'" + shard + "' claims a format with checksums, but dataset");
}

TEST_F(LyingInputs, ShardDtypesAreCheckedNotConverted) {
  const std::string d = copy_of_data(), shard = d + "/mnist-train-00000-of-00002.h5";
  h5::Handle f(H5Fopen(shard.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  const auto n = h5::dims_of(f, "labels", shard)[0];
  f.reset();
  // int16 labels of -1 (HDF5 would convert them to 0 or 255) and float images.
  rewrite_dataset(shard, "labels", H5T_STD_I16LE, {n}, std::vector<double>(n, -1.0));
  auto r = run(train_cmd("S", "--set train.epochs=1", 1, d));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("dataset 'labels' in '" + shard +
                          "' holds int16 values, but "
                          "dptrain's format stores uint8"),
            std::string::npos)
      << r.output;
  run("cp " + data() + "/mnist-train-00000-of-00002.h5 " + shard);
  rewrite_dataset(shard, "images", H5T_IEEE_F32LE, {n, 28, 28, 1}, {});
  expect_refusal(train_cmd("S", "--set train.epochs=1", 1, d),
                 "dataset 'images' in '" + shard + "' holds float32 values");
}

TEST_F(LyingInputs, HugeDataspaceIsRefusedBeforeAllocating) {
  const std::string d = copy_of_data(), shard = d + "/mnist-train-00000-of-00002.h5";
  // 2^40 images: a few bytes of metadata in a sparse chunked dataset, 800 TB if allocated.
  rewrite_dataset(shard, "images", H5T_STD_U8LE, {hsize_t(1) << 40, 28, 28, 1}, {});
  for (const std::string& cmd :
       {train_cmd("S", "--set train.epochs=1", 1, d), dptrain() + " verify " + shard}) {
    const auto r = run(cmd);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("images' in '" + shard + "' claims"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("bad_alloc"), std::string::npos) << r.output;
  }
}

TEST_F(LyingInputs, ShardsOfTwoPreparesAreNotMixed) {
  ASSERT_EQ(run(prepare_cmd(dir_ + "/a", 2)).exit_code, 0);
  ASSERT_EQ(run(prepare_cmd(dir_ + "/b", 2)).exit_code, 0);
  run("cp " + dir_ + "/b/mnist-train-00001-of-00002.h5 " + dir_ + "/a/");
  auto r = run(train_cmd("S", "--set train.epochs=1", 1, dir_ + "/a"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("come from two different prepares"), std::string::npos) << r.output;
  // The test file of another prepare too.
  run("cp " + dir_ + "/b/mnist-train-00001-of-00002.h5 " + dir_ +
      "/b/mnist-train-00000-of-00002.h5 " + dir_ + "/a/");
  expect_refusal(train_cmd("S", "--set train.epochs=1", 1, dir_ + "/a"),
                 "the test file in '" + dir_ + "/a' has prepare_id");
}

TEST_F(LyingInputs, PrepareKeepsWhatItDidNotWriteAndSwapsTheFolderAtOnce) {
  const std::string out = dir_ + "/d";
  run("mkdir -p " + out + "/extra && echo mine > " + out + "/notes.txt && echo x > " + out +
      "/extra/f && echo other > " + out + "/mnist-train-00000-of-00009.h5");
  ASSERT_EQ(run(prepare_cmd(out, 2)).exit_code, 0);
  struct stat before;
  ASSERT_EQ(::stat(out.c_str(), &before), 0);
  const auto r = run(prepare_cmd(out, 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  struct stat after;
  ASSERT_EQ(::stat(out.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino) << "the folder was not exchanged as a whole";
  EXPECT_EQ(read_file(out + "/notes.txt"), "mine\n");
  EXPECT_EQ(read_file(out + "/extra/f"), "x\n");
  EXPECT_EQ(read_file(out + "/mnist-train-00000-of-00009.h5"), "other\n") << "not prepare's";
  EXPECT_EQ(run("ls " + out + "/mnist-train-*-of-00002.h5").exit_code, 2) << "old set left";
  EXPECT_EQ(trim(run("ls " + out + "/mnist-train-*-of-00003.h5 | wc -l").output), "3");
  const std::string manifest = read_file(out + "/.dptrain-dataset");
  EXPECT_NE(manifest.find("file mnist-train-00002-of-00003.h5\n"), std::string::npos) << manifest;
  h5::Handle f(H5Fopen((out + "/mnist-test.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  const std::string id = h5::get_attr_string(f, "prepare_id", out);
  EXPECT_NE(manifest.find("prepare_id " + id + "\n"), std::string::npos) << manifest;
  EXPECT_EQ(run("ls -a " + dir_ + " | grep -c prepare").output, "0\n");
}

TEST_F(LyingInputs, PrepareRefusesToReplaceAFileItDidNotWrite) {
  const std::string out = dir_ + "/d";
  run("mkdir -p " + out + " && echo mine > " + out + "/mnist-test.h5");
  const auto r = run(prepare_cmd(out, 2));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("holds 'mnist-test.h5', which no earlier dptrain prepare wrote"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(out + "/mnist-test.h5"), "mine\n");
  EXPECT_EQ(run("ls -A " + out).output, "mnist-test.h5\n");
  EXPECT_EQ(run("ls -a " + dir_ + " | grep -c prepare").output, "0\n");
}

TEST_F(LyingInputs, MidEpochResumeWithAnotherBatchSizeIsRefused) {
  auto r = run(train_cmd("R", "--set train.epochs=1 --set checkpoint.every_steps=3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The oldest of the three kept (steps 6, 9 and the epoch's end at 10) is mid-epoch.
  const std::string mid = trim(run("ls " + ckpt_dir("R") + "/ckpt-*.h5 | head -1").output);
  ASSERT_FALSE(mid.empty()) << run("ls " + ckpt_dir("R")).output;
  r = run(train_cmd("R2", "--set train.epochs=1 --set train.batch_size=32 --resume " + mid));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("was written mid-epoch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resume with batch_size 64"), std::string::npos) << r.output;
}

TEST_F(LyingInputs, RanksWithDifferentConfigsAreRefusedByName) {
  // An MPMD launch: the two ranks get different batch sizes.
  const std::string base = train_cmd("M", "--set train.epochs=1");
  const auto r = run(kMpirun + "-np 1 " + base + " --set train.batch_size=32 : -np 1 " + base);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("this rank's resolved config differs from rank 0's"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("batch_size: 64"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("free()"), std::string::npos) << r.output;
}

TEST_F(LyingInputs, FifosNeverBlock) {
  run("mkfifo " + dir_ + "/config.yaml");
  auto r = run("timeout 20 " + dptrain() + " train " + dir_ + "/config.yaml");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is a FIFO"), std::string::npos) << r.output;
  // A FIFO named like a checkpoint: resume auto skips it and takes the real one.
  r = run(train_cmd("R", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  run("mkfifo " + ckpt_dir("R") + "/ckpt-0009-00099999.h5");
  r = run("timeout 60 " + train_cmd("R", "--set train.epochs=2 --resume auto"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipping '" + ckpt_dir("R") + "/ckpt-0009-00099999.h5'"),
            std::string::npos)
      << r.output;
}

TEST_F(LyingInputs, WrongKindsOfFileAreNamedForWhatTheyAre) {
  auto r = run(train_cmd("R", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string shard = data() + "/mnist-test.h5";
  expect_refusal(dptrain() + " eval " + shard,
                 "is a data shard (written by dptrain prepare), not a checkpoint");
  expect_refusal(dptrain() + " verify " + dir_, "is a folder, not a file");
  expect_refusal(train_cmd("X", "--set train.epochs=1", 1, shard),
                 "data.dir '" + shard + "' is a file, not a folder");
  // A checkpoint whose stored config is not YAML names the checkpoint.
  const std::string bad = dir_ + "/bad.h5";
  run("cp " + newest("R") + " " + bad);
  {
    h5::Handle f(H5Fopen(bad.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(H5Adelete(f, "config"), 0);
    h5::set_attr(f, "config", std::string("name: [unclosed"));
  }
  expect_refusal(dptrain() + " eval " + bad,
                 "the config stored in checkpoint '" + bad + "' is not valid YAML");
}

TEST_F(LyingInputs, BadMetricsRowsOnResumeAreDroppedWithAWarning) {
  auto r = run(train_cmd("R", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  run("echo 'garbage,row,x' >> " + dir_ + "/R/metrics.csv");
  r = run(train_cmd("R", "--set train.epochs=2 --resume auto"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 row(s) of '" + dir_ + "/R/metrics.csv' were not metrics rows"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("stoll"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("stoul"), std::string::npos) << r.output;
}

// Whether pid has a handler installed for sig (SigCgt in /proc/PID/status).
bool catches(pid_t pid, int sig) {
  const std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("SigCgt:\t");
  if (at == std::string::npos) return false;
  return (std::stoull(status.substr(at + 8, 16), nullptr, 16) >> (sig - 1)) & 1;
}

TEST_F(LyingInputs, SigtermDuringSetUpCheckpointsAndExits75) {
  // The full 60,000-image set loads for a while: the signal lands before the first step, as
  // soon as the handler is in place (dptrain train installs it before reading the config).
  const std::string cmd = dptrain() + " train " + source_dir() +
                          "/configs/mnist_convnet.yaml --set data.dir=" + data() +
                          " --set run_dir=" + dir_ + "/T --set train.epochs=1";
  const pid_t pid = spawn_shell("exec " + cmd + " > " + dir_ + "/t.txt 2>&1");
  bool ready = false;
  for (int i = 0; i < 2000 && !ready; ++i) {
    ready = catches(pid, SIGTERM);
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Set-up had not written the run's files yet when the handler was already there.
  const bool set_up = ::access((dir_ + "/T/log.txt").c_str(), F_OK) == 0;
  const bool training = read_file(dir_ + "/t.txt").find("Epoch 1/") != std::string::npos;
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string out = read_file(dir_ + "/t.txt");
  ASSERT_TRUE(ready) << out;
  EXPECT_FALSE(set_up) << "the handler came only at the end of set-up: " << out;
  EXPECT_FALSE(training) << "the signal came after set-up: " << out;
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << ": " << out;
  EXPECT_EQ(WEXITSTATUS(status), 75) << out;
  EXPECT_NE(out.find("Stop signal 15 received"), std::string::npos) << out;
}

TEST_F(LyingInputs, ClosedStdoutPipeDoesNotKillTraining) {
  const auto r = run("bash -c '" + train_cmd("P", "--set train.epochs=2") +
                     " | head -1 > /dev/null; echo dptrain=${PIPESTATUS[0]}'");
  EXPECT_NE(r.output.find("dptrain=0"), std::string::npos) << r.output;
  EXPECT_NE(read_file(dir_ + "/P/log.txt").find("Epoch 2/2"), std::string::npos);
  EXPECT_EQ(run("test -f " + dir_ + "/P/summary.yaml").exit_code, 0);
}

TEST_F(LyingInputs, OneProcessCommandsUnderMpirunSayItOnce) {
  const auto r = run(kMpirun + "-np 2 " + prepare_cmd(dir_ + "/m", 2));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(lines_of(r.output, "run dptrain prepare as one process"), 1u) << r.output;
  EXPECT_EQ(r.output.find("MPI_ABORT"), std::string::npos) << r.output;
}

TEST_F(LyingInputs, ModelsThatCannotTrainAreRefusedAtStart) {
  // Every parameter frozen: training would change nothing.
  auto r = run(train_cmd("F",
                         "--set train.epochs=1 --set 'model.layers=[{conv2d: {filters: 10, "
                         "kernel: 28, trainable: false}}, {flatten: {}}]'"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the model has no trainable parameters"), std::string::npos) << r.output;
  // Whitening patches larger than the image.
  expect_refusal(
      train_cmd("W",
                "--set train.epochs=1 --set 'model.layers=[{conv2d: {filters: 8, "
                "kernel: 30, padding: same, kernel_initializer: whiten}}, {flatten: {}}, "
                "{dense: {units: 10}}]'"),
      "use a kernel at most as large as the image");
  EXPECT_EQ(r.output.find("dsyev"), std::string::npos) << r.output;
}

TEST_F(LyingInputs, PrepareTrustsNoManifestBeyondItsOwnDatasetsNames) {
  const std::string out = dir_ + "/d";
  ASSERT_EQ(run(prepare_cmd(out, 2)).exit_code, 0);
  run("echo mine > " + out + "/notes.txt && echo theirs > " + out + "/cifar10-test.h5");
  // A manifest edited to list the user's files: they are not mnist shard names, so they stay.
  run("printf 'file notes.txt\nfile ../x\nfile cifar10-test.h5\n' >> " + out +
      "/.dptrain-dataset && echo x > " + dir_ + "/x");
  auto r = run(prepare_cmd(out, 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(out + "/notes.txt"), "mine\n");
  EXPECT_EQ(read_file(out + "/cifar10-test.h5"), "theirs\n");
  EXPECT_EQ(read_file(dir_ + "/x"), "x\n");
  // --out given as a link (followed: the folder is swapped, the link stays) and as '.'.
  run("ln -s " + out + " " + dir_ + "/link");
  r = run(prepare_cmd(dir_ + "/link", 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run("test -L " + dir_ + "/link").exit_code, 0) << "the link was replaced";
  EXPECT_EQ(trim(run("ls " + out + "/mnist-train-*-of-00002.h5 | wc -l").output), "2");
  r = run("cd " + out + " && " + prepare_cmd(".", 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(trim(run("ls " + out + "/mnist-train-*-of-00003.h5 | wc -l").output), "3");
  EXPECT_EQ(read_file(out + "/notes.txt"), "mine\n");
  EXPECT_EQ(run("ls -a " + dir_ + " " + out + " | grep -c prepare").output, "0\n");
}

TEST_F(LyingInputs, PrepareIntoAMountPointReplacesFileByFile) {
  SmallDisk disk(dir_ + "/mnt", 32 * 1024);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string out = dir_ + "/mnt";
  run("echo mine > " + out + "/notes.txt");
  ASSERT_EQ(run(prepare_cmd(out, 2)).exit_code, 0);
  const auto r = run(prepare_cmd(out, 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("its files were replaced one by one"), std::string::npos) << r.output;
  EXPECT_EQ(trim(run("ls " + out + "/mnist-train-*.h5 | wc -l").output), "3");
  EXPECT_EQ(read_file(out + "/notes.txt"), "mine\n");
  EXPECT_EQ(run("ls -a " + out + " | grep -c prepare").output, "0\n");
  const auto v = run(dptrain() + " verify " + out + "/*.h5");
  EXPECT_EQ(v.exit_code, 0) << v.output;
}

TEST_F(LyingInputs, StoredConfigsAreReadAsWrittenAndNamedWhenBroken) {
  auto r = run(train_cmd("R", "--set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto with_config = [&](const std::string& name, const std::string& edit_from,
                               const std::string& edit_to) {
    const std::string p = dir_ + "/" + name;
    run("cp " + newest("R") + " " + p);
    h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    std::string text = h5::get_attr_string(f, "config", p);
    const size_t at = text.find(edit_from);
    EXPECT_NE(at, std::string::npos) << text;
    if (at != std::string::npos) text.replace(at, edit_from.size(), edit_to);
    H5Adelete(f, "config");
    h5::set_attr(f, "config", text);
    return p;
  };
  // A setting refused at the start of a run today (a target with no monitor) does not lock
  // an older model out of eval.
  const std::string old =
      with_config("old.h5", "train:\n", "train:\n  early_stopping: {target: 0.5}\n");
  r = run(dptrain() + " eval " + old);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // A value of the wrong type names the checkpoint, not yaml-cpp's "bad conversion".
  const std::string bad = with_config("bad.h5", "kernel: 3", "kernel: [3, x]");
  r = run(dptrain() + " eval " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the config stored in checkpoint '" + bad + "'"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("bad conversion"), std::string::npos) << r.output;
}

TEST_F(LyingInputs, ShardAttributesThatLieAreRefused) {
  const std::string d = copy_of_data(), test = d + "/mnist-test.h5";
  const auto set_attr = [&](const std::string& name, auto value) {
    h5::Handle f(H5Fopen(test.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    H5Adelete(f, name.c_str());
    h5::set_attr(f, name, value);
  };
  set_attr("classes", int64_t(1) << 62);
  expect_refusal(dptrain() + " verify " + test, "attribute classes is 4611686018427387904");
  run("cp " + data() + "/mnist-test.h5 " + test);
  set_attr("class_names", std::string("a,b"));
  expect_refusal(dptrain() + " verify " + test, "lists 2 class names for 10 classes");
}

}  // namespace
}  // namespace dpt::testing
