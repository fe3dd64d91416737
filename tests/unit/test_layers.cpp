// Note [layers]: the check every build runs (scripts/check_layers.cmake) passes on this tree and
// fails, naming the file, when a lower module includes a higher one.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_helpers.h"

namespace dpt::testing {
namespace {

RunResult check_layers(const std::string& tree) {
  return run(std::string(DPT_CMAKE) + " -DSOURCE_DIR=" + tree + " -P " + source_dir() +
             "/scripts/check_layers.cmake");
}

TEST(Layers, ThisTreeKeepsDependenciesOneWay) {
  const RunResult r = check_layers(source_dir());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Layers, ALowerModuleIncludingAHigherOneFailsTheCheck) {
  const TempDir tmp("layers");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"models/bad.cpp", "trainer/trainer.h"},             // models above trainer
      {"core/bad.h", "models/model.h"},                    // core above everything
      {"trainer/optim/bad.cpp", "trainer/config.h"},       // a sub-room above its parent
      {"trainer/sharing/bad.cpp", "comm/communicator.h"},  // sideways between rooms
      {"trainer/bad.cpp", "trainer/cli/commands.h"},       // nothing includes the CLI
  };
  for (const auto& [file, include] : bad) {
    SCOPED_TRACE(file);
    for (const char* room : {"core", "models", "data", "comm", "trainer"})
      remove_tree(tmp.path() + "/" + room);
    std::filesystem::create_directories(
        std::filesystem::path(tmp.path() + "/" + file).parent_path());
    write_text(tmp.path() + "/" + file, "// a test file\n#include \"" + include + "\"\n");
    const RunResult r = check_layers(tmp.path());
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(file + " "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(include), std::string::npos) << r.output;
  }
  // Allowed the other way round.
  for (const char* room : {"core", "models", "data", "comm", "trainer"})
    remove_tree(tmp.path() + "/" + room);
  std::filesystem::create_directories(tmp.path() + "/trainer/cli");
  write_text(tmp.path() + "/trainer/cli/ok.cpp",
             "#include \"trainer/trainer.h\"\n#include \"models/model.h\"\n");
  const RunResult ok = check_layers(tmp.path());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

}  // namespace
}  // namespace dpt::testing
