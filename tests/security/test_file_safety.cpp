// Security (ctest -L security): dptrain never writes through a link it did not make, never
// deletes or overwrites what is not its own, and never mixes two runs (Note [file safety]).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "faults/fault_helpers.h"

namespace dpt::testing {
namespace {

class FileSafety : public FaultTest {
 protected:
  // A file of the victim's that a planted link points to; its bytes must survive.
  std::string victim(const std::string& name = "victim.txt") {
    const std::string p = dir_ + "/" + name;
    write_file(p, "precious bytes\n");
    return p;
  }
  void expect_untouched(const std::string& path) {
    EXPECT_EQ(read_file(path), "precious bytes\n") << path << " was written through a link";
  }
  // A short first run to continue from (1 epoch, checkpoints in run/checkpoints).
  void first_run(const std::string& name, const std::string& extra = "") {
    const auto r = run(train_cmd(name, "--set train.epochs=1 " + extra));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string resume(const std::string& name, const std::string& extra = "") {
    return train_cmd(name, "--set train.epochs=2 --resume auto " + extra);
  }
};

TEST_F(FileSafety, PlantedLockLinkIsRefusedAndItsTargetKept) {
  const std::string v = victim();
  run("mkdir -p " + dir_ + "/R && ln -s " + v + " " + dir_ + "/R/.dptrain.lock");
  const auto r = run(train_cmd("R", "--set train.epochs=1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the run lock '" + dir_ + "/R/.dptrain.lock' is a symbolic link"),
            std::string::npos)
      << r.output;
  expect_untouched(v);
}

TEST_F(FileSafety, PlantedLogAndMetricsLinksAreRefusedOnResume) {
  first_run("R");
  const std::string v = victim();
  for (const std::string& file : std::vector<std::string>{"log.txt", "metrics.csv"}) {
    const std::string p = dir_ + "/R/" + file;
    const std::string keep = read_file(p);
    run("mv " + p + " " + p + ".real && ln -s " + v + " " + p);
    const auto r = run(resume("R"));
    EXPECT_EQ(r.exit_code, 1) << file << ": " << r.output;
    EXPECT_NE(r.output.find(file + " '" + p + "' is a symbolic link"), std::string::npos)
        << r.output;
    expect_untouched(v);
    run("rm " + p + " && mv " + p + ".real " + p);
    EXPECT_EQ(read_file(p), keep);
  }
  // A dangling metrics.csv link (the file would be created at its target) is refused too.
  run("mv " + dir_ + "/R/metrics.csv " + dir_ + "/m.csv && ln -s " + dir_ + "/planted.csv " + dir_ +
      "/R/metrics.csv");
  const auto r = run(resume("R"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(run("test -e " + dir_ + "/planted.csv").exit_code, 0) << "created through a link";
}

TEST_F(FileSafety, PlantedTensorBoardFolderLinkIsRefused) {
  first_run("R");
  run("mkdir -p " + dir_ + "/elsewhere && rm -rf " + dir_ + "/R/tensorboard && ln -s " + dir_ +
      "/elsewhere " + dir_ + "/R/tensorboard");
  const auto r = run(resume("R"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the TensorBoard folder '" + dir_ + "/R/tensorboard"), std::string::npos)
      << r.output;
  EXPECT_EQ(run("ls -A " + dir_ + "/elsewhere").output, "") << "written through the link";
}

TEST_F(FileSafety, RunDirThroughAnotherUsersLinkIsRefused) {
  run("mkdir -p " + dir_ + "/real && ln -s " + dir_ + "/real " + dir_ + "/link");
  if (run("chown -h nobody " + dir_ + "/link").exit_code != 0)
    GTEST_SKIP() << "cannot give a link to user nobody here (not root)";
  const auto r = run(train_cmd("link", "--set train.epochs=1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("a symbolic link owned by"), std::string::npos) << r.output;
  EXPECT_EQ(run("ls -A " + dir_ + "/real").output, "") << "written through the link";
}

TEST_F(FileSafety, StaleTemporaryCleanUpTakesOnlyDptrainsOwnOfDeadWriters) {
  first_run("R");
  const std::string ck = ckpt_dir("R");
  // A PID that is surely dead: a child that has exited and been reaped.
  const pid_t dead = spawn_shell("true");
  ::waitpid(dead, nullptr, 0);
  const std::string own_dead = ck + "/ckpt-0001-00000005.h5.tmp-" + std::to_string(dead);
  const std::string live = ck + "/ckpt-0001-00000006.h5.tmp-" + std::to_string(::getpid());
  const std::string users = ck + "/thesis.tmp-final.docx";
  const std::string others = dir_ + "/R/config.yaml.tmp-" + std::to_string(dead);
  for (const auto& f : {own_dead, live, users, others}) write_file(f, "x");
  const bool chowned = run("chown nobody " + others).exit_code == 0;
  const auto r = run(resume("R"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Removed '" + own_dead + "'"), std::string::npos) << r.output;
  EXPECT_NE(run("test -e " + own_dead).exit_code, 0);
  EXPECT_EQ(read_file(live), "x") << "a live writer's temporary was deleted";
  EXPECT_EQ(read_file(users), "x") << "a user's file was deleted";
  if (chowned) {
    EXPECT_EQ(read_file(others), "x") << "another user's file was deleted";
  }
}

TEST_F(FileSafety, OverwriteNeverRenamesOntoAnExistingFolder) {
  first_run("S");
  // Every name the move-aside folder could take in the next two minutes already exists and
  // holds a file: the earlier run must land in a new folder, and those files stay.
  const auto now = std::chrono::system_clock::now();
  for (int s = 0; s < 120; ++s) {
    const std::time_t t = std::chrono::system_clock::to_time_t(now + std::chrono::seconds(s));
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
    const std::string d = dir_ + "/S/overwritten-" + stamp;
    run("mkdir -p " + d);
    write_file(d + "/earlier.txt", std::string(stamp));
  }
  const auto r = run(train_cmd("S", "--set train.epochs=1 --set train.seed=9 --overwrite"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/S/overwritten-*-2/ckpt-0001-*.h5").exit_code, 0) << r.output;
  EXPECT_EQ(trim(run("ls " + dir_ + "/S/overwritten-*/earlier.txt | wc -l").output), "120");
}

TEST_F(FileSafety, OverwriteAcrossFilesystemsMovesCheckpointsBesideThem) {
  SmallDisk disk(dir_ + "/disk", 64 * 1024);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string ck = "--set checkpoint.dir=" + dir_ + "/disk/ck";
  first_run("S", ck);
  const auto r = run(train_cmd("S", "--set train.epochs=1 --set train.seed=9 --overwrite " + ck));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/disk/ck/overwritten-*/ckpt-0001-*.h5").exit_code, 0) << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/S/overwritten-*/metrics.csv").exit_code, 0) << r.output;
  EXPECT_EQ(trim(run("ls " + dir_ + "/disk/ck/ckpt-*.h5 | wc -l").output), "1");
}

TEST_F(FileSafety, CheckpointDirOfAnotherRunIsRefused) {
  first_run("A");
  const std::string before = snapshot(dir_ + "/A");
  const auto r = run(train_cmd("B", "--set train.epochs=1 --set checkpoint.dir=" + ckpt_dir("A")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("lies inside '" + dir_ + "/A', the run directory of another run"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(snapshot(dir_ + "/A"), before);
  // A checkpoint folder outside any run, holding A's checkpoints, is refused as A's files.
  first_run("C", "--set checkpoint.dir=" + dir_ + "/ck");
  const auto d = run(train_cmd("D", "--set train.epochs=1 --set checkpoint.dir=" + dir_ + "/ck"));
  EXPECT_EQ(d.exit_code, 1) << d.output;
  EXPECT_NE(d.output.find("already holds files of an earlier run"), std::string::npos) << d.output;
}

TEST_F(FileSafety, CheckpointDirOfALiveRunIsLocked) {
  const pid_t pid = spawn_shell("exec " +
                                train_cmd("A",
                                          "--set train.epochs=30 --set data.max_train_samples=3000"
                                          " --set checkpoint.every_epochs=0 --set "
                                          "checkpoint.dir=" +
                                              dir_ + "/ck") +
                                " > " + dir_ + "/a.txt 2>&1");
  bool started = false;
  for (int i = 0; i < 400 && !started; ++i) {
    started = read_file(dir_ + "/a.txt").find("Epoch 1/") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  // Its checkpoints live outside any run directory: the lock on that folder is what stops B.
  const auto b = run(train_cmd("B", "--set train.epochs=1 --set checkpoint.dir=" + dir_ + "/ck"));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(started) << read_file(dir_ + "/a.txt");
  EXPECT_EQ(b.exit_code, 1) << b.output;
  EXPECT_NE(b.output.find("'" + dir_ + "/ck' is in use by another dptrain run (PID " +
                          std::to_string(pid)),
            std::string::npos)
      << b.output;
}

TEST_F(FileSafety, ResumingAnotherRunsCheckpointIntoAFinishedRunIsRefused) {
  first_run("A");
  first_run("B", "--set train.epochs=1");
  const std::string before = snapshot(dir_ + "/A");
  const auto r = run(train_cmd("A", "--set train.epochs=2 --resume " + newest("B")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("resuming here would mix the two runs"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(dir_ + "/A"), before);
}

TEST_F(FileSafety, ResumeAutoWithAnotherCheckpointDirDoesNotStartFreshOverAFinishedRun) {
  first_run("A");
  const std::string before = snapshot(dir_ + "/A");
  const auto r = run(resume("A", "--set checkpoint.dir=" + dir_ + "/other"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("starting fresh would mix the two runs"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(dir_ + "/A"), before);
}

TEST_F(FileSafety, OverwriteAndResumeTogetherAreRefused) {
  first_run("A");
  const std::string before = snapshot(dir_ + "/A");
  const auto r = run(resume("A", "--overwrite"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--overwrite and --resume auto contradict each other"), std::string::npos)
      << r.output;
  EXPECT_EQ(snapshot(dir_ + "/A"), before);
}

TEST_F(FileSafety, NameThatLeavesTheRunsFolderIsRefused) {
  write_file(dir_ + "/config.yaml", "mine\n");
  for (const std::string& name : std::vector<std::string>{"..", ".", "a/../../b"}) {
    const auto r = run("cd " + dir_ + "/ && mkdir -p runs && " + dptrain() + " train " +
                       source_dir() + "/configs/mnist_convnet.yaml --set data.dir=" + data() +
                       " --set 'name=" + name + "' --set train.epochs=1");
    EXPECT_EQ(r.exit_code, 1) << name << ": " << r.output;
    EXPECT_NE(r.output.find("config key 'name' is '" + name + "'"), std::string::npos) << r.output;
  }
  EXPECT_EQ(read_file(dir_ + "/config.yaml"), "mine\n");
  EXPECT_EQ(run("ls -A " + dir_ + "/runs").output, "");
}

TEST_F(FileSafety, OutputsThatAreInputsAreRefused) {
  first_run("R");
  const std::string ck = newest("R");
  const std::string shard = data() + "/mnist-test.h5";
  const std::string ck_sum = run("md5sum " + ck).output, shard_sum = run("md5sum " + shard).output;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"eval " + ck + " --predictions " + ck, "--predictions '" + ck + "' is the input"},
      {"eval " + ck + " --predictions " + shard, "--predictions '" + shard + "' is the input"},
      {"export " + ck + " --onnx " + ck, "--onnx '" + ck + "' is the input"}};
  for (const auto& [args, says] : cases) {
    const auto r = run(dptrain() + " " + args);
    EXPECT_EQ(r.exit_code, 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << r.output;
  }
  // A hard link to the checkpoint is the same file by inode.
  run("ln " + ck + " " + dir_ + "/same.h5");
  const auto r = run(dptrain() + " export " + ck + " --onnx " + dir_ + "/same.h5");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(run("md5sum " + ck).output, ck_sum);
  EXPECT_EQ(run("md5sum " + shard).output, shard_sum);
}

TEST_F(FileSafety, PredictionsReplaceALinkNotItsTarget) {
  first_run("R");
  const std::string v = victim();
  const std::string out = dir_ + "/preds.csv";
  run("ln -s " + v + " " + out);
  const auto r = run(dptrain() + " eval " + newest("R") + " --predictions " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_untouched(v);
  EXPECT_EQ(run("test -L " + out).exit_code, 1) << "still a link";
  const std::string csv = read_file(out);
  EXPECT_EQ(csv.rfind("index,label,predicted\n", 0), 0u) << csv.substr(0, 100);
  EXPECT_EQ(lines_of(csv, "\n"), 10001u);  // header + the 10,000 test images
  EXPECT_EQ(run("ls " + dir_ + " | grep -c tmp-").output, "0\n") << "temporary left behind";
}

TEST_F(FileSafety, PlantedFifosNeverBlockAWriter) {
  first_run("R");
  for (const std::string& file : std::vector<std::string>{"log.txt", "metrics.csv"}) {
    const std::string p = dir_ + "/R/" + file;
    run("mv " + p + " " + p + ".real && mkfifo " + p);
    const auto r = run("timeout 60 " + resume("R"));
    EXPECT_EQ(r.exit_code, 1) << file << ": " << r.output;
    EXPECT_NE(r.output.find("is a FIFO"), std::string::npos) << r.output;
    run("rm " + p + " && mv " + p + ".real " + p);
  }
}

TEST_F(FileSafety, CheckpointDirEqualToRunDirAndUsersOwnLinkWork) {
  auto r = run(train_cmd("R", "--set train.epochs=1 --set checkpoint.dir=" + dir_ + "/R"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/R/ckpt-0001-*.h5").exit_code, 0);
  // The user's own link for the checkpoints (to a scratch disk) is followed.
  run("mkdir -p " + dir_ + "/scratch " + dir_ + "/L && ln -s " + dir_ + "/scratch " + dir_ +
      "/L/checkpoints");
  r = run(train_cmd("L", "--set train.epochs=1"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run("ls " + dir_ + "/scratch/ckpt-0001-*.h5").exit_code, 0);
}

TEST_F(FileSafety, PlotRefusesAPlantedPlotsLinkAndReplacesLinkedImages) {
  first_run("R");
  const std::string v = victim("victim.png");
  run("mkdir -p " + dir_ + "/elsewhere && ln -s " + dir_ + "/elsewhere " + dir_ + "/R/plots");
  auto r = run(dptrain() + " plot " + dir_ + "/R");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the plots folder '" + dir_ + "/R/plots' is a symbolic link"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(run("ls -A " + dir_ + "/elsewhere").output, "");
  run("rm " + dir_ + "/R/plots && mkdir " + dir_ + "/R/plots && ln -s " + v + " " + dir_ +
      "/R/plots/curves.png");
  r = run(dptrain() + " plot " + dir_ + "/R");
  if (r.output.find("matplotlib is missing") != std::string::npos)
    GTEST_SKIP() << "no python3-matplotlib here";
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_untouched(v);
  EXPECT_EQ(run("test -L " + dir_ + "/R/plots/curves.png").exit_code, 1);
}

TEST_F(FileSafety, OutputsThatAreNotFilesAreRefusedBeforeAnyWork) {
  first_run("R");
  const std::string ck = newest("R");
  run("mkfifo " + dir_ + "/fifo && mkdir " + dir_ + "/folder && ln -s " + dir_ + "/fifo " + dir_ +
      "/to-fifo");
  for (const std::string& out : {dir_ + "/fifo", dir_ + "/folder", dir_ + "/to-fifo"})
    for (const std::string& args :
         {"eval " + ck + " --predictions " + out, "export " + ck + " --onnx " + out}) {
      const auto r = run("timeout 60 " + dptrain() + " " + args);
      EXPECT_EQ(r.exit_code, 1) << args << ": " << r.output;
      EXPECT_NE(r.output.find("' is a "), std::string::npos) << r.output;
      EXPECT_NE(r.output.find("not a file"), std::string::npos) << r.output;
    }
  EXPECT_EQ(run("test -p " + dir_ + "/fifo && test -d " + dir_ + "/folder && test -L " + dir_ +
                "/to-fifo")
                .exit_code,
            0)
      << "an output that is not a file was replaced";
  EXPECT_EQ(run("ls " + dir_ + " | grep -c tmp-").output, "0\n") << "temporary left behind";
}

TEST_F(FileSafety, RunFoldersInsideAnotherRunsFoldersAreRefused) {
  first_run("A");
  const std::string before = snapshot(dir_ + "/A");
  for (const std::string& extra :
       {std::string("--set run_dir=") + ckpt_dir("A"),       // run_dir = A's checkpoints
        std::string("--set checkpoint.dir=") + dir_ + "/A",  // checkpoint.dir = A's run_dir
        std::string("--set checkpoint.dir=") + ckpt_dir("A") + "/sub"}) {
    const auto r = run(train_cmd("B", "--set train.epochs=1 " + extra));
    EXPECT_EQ(r.exit_code, 1) << extra << ": " << r.output;
    EXPECT_NE(r.output.find("lies inside '" + dir_ + "/A', the run directory of another run"),
              std::string::npos)
        << r.output;
  }
  EXPECT_EQ(snapshot(dir_ + "/A"), before);
}

TEST_F(FileSafety, HardLinkedRunFilesAreNotAppendedTo) {
  first_run("R");
  write_file(dir_ + "/outside.csv", "precious bytes\n");
  run("rm " + dir_ + "/R/log.txt && ln " + dir_ + "/outside.csv " + dir_ + "/R/log.txt");
  const auto r = run(resume("R"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("has 2 names (hard links)"), std::string::npos) << r.output;
  expect_untouched(dir_ + "/outside.csv");
}

TEST_F(FileSafety, RanksRunningDifferentCommandsOrFilesAreRefusedNotHung) {
  first_run("A");
  first_run("B");
  const std::string a = newest("A"), b = newest("B");
  auto r = run(kMpirun + "-np 1 " + train_cmd("C", "--set train.epochs=1") + " : -np 1 " +
               dptrain() + " eval " + a);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("this rank's dptrain command differs from rank 0's"), std::string::npos)
      << r.output;
  r = run(kMpirun + "-np 1 " + dptrain() + " eval " + a + " : -np 1 " + dptrain() + " eval " + b);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("this rank's eval arguments differs from rank 0's"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace dpt::testing
