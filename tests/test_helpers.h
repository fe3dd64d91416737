// The helpers every test binary shares: temporary directories, files, running the dptrain binary.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <array>
#include <chrono>
#include <functional>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dpt::testing {

inline std::string temp_dir(const std::string& tag) {
  std::string tmpl = "/tmp/dpt-" + tag + "-XXXXXX";
  const char* d = ::mkdtemp(tmpl.data());
  return d ? d : "";
}

// Removes a test's directory tree; a no-op for an empty path.
inline void remove_tree(const std::string& path) {
  std::error_code ec;
  if (!path.empty()) std::filesystem::remove_all(path, ec);
}

// A temporary directory that is removed, with everything in it, when it goes out of scope:
// also when an ASSERT ends the test half-way.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) : path_(temp_dir(tag)) {}
  ~TempDir() { remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A whole file as bytes; "" when it cannot be read.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The environment of tests that start dptrain under mpirun as root, one thread per rank.
inline const std::string kMpiEnv =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ";

// Note [test locations]: where the tests find the datasets, the dptrain binary, the sources
// (configs, scripts) and the Python venv: the environment variables DPT_DATASETS, DPT_BINARY,
// DPT_SOURCE_DIR and DPT_PYENV when set (the GPU bundle sets them on a machine that has none of
// this machine's paths), else what CMake saw at build time.
inline std::string location(const char* variable, const char* built_in) {
  const char* v = std::getenv(variable);
  return v && *v ? v : built_in;
}
inline std::string datasets() { return location("DPT_DATASETS", DPT_DATASETS); }
inline std::string source_dir() { return location("DPT_SOURCE_DIR", DPT_SOURCE_DIR); }

struct RunResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line; the exit code is the process's own.
inline RunResult run(const std::string& cmd) {
  RunResult r{0, ""};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf;
  while (p && std::fgets(buf.data(), buf.size(), p)) r.output += buf.data();
  const int status = p ? ::pclose(p) : -1;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline std::string dptrain() { return location("DPT_BINARY", DPT_BINARY); }

// Starts `sh -c cmd` in the background; the caller waits for (or kills) it by this PID.
inline pid_t spawn_shell(const std::string& cmd) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

// A throttled node: process pid is stopped 70% of the time (SIGSTOP 35 ms, SIGCONT 15 ms),
// for at most `cycles` cycles, until done() (asked every 10th cycle) or the process is gone;
// it is left running. Returns whether done() said so.
inline bool throttle_until(pid_t pid, const std::function<bool()>& done, int cycles = 400) {
  bool said = false;
  for (int i = 0; i < cycles && !said && ::kill(pid, 0) == 0; ++i) {
    ::kill(pid, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(35));
    ::kill(pid, SIGCONT);
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
    if (i % 10 == 0) said = done();
  }
  ::kill(pid, SIGCONT);
  return said;
}

// Text without its trailing newlines (command output).
inline std::string trim_newline(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace dpt::testing
