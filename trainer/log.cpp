// Rank-0 logging to stdout and log.txt, with a redrawn progress line only on a terminal.
#include "trainer/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/files.h"
#include "core/safe_files.h"

namespace dpt::log {

namespace {
int g_rank = 0;
int g_fd = -1;  // log.txt, appended with O_NOFOLLOW (Note [file safety])
std::string g_path;
bool g_progress_open = false;
}  // namespace

void init(int rank, const std::string& log_file) {
  g_rank = rank;
  if (g_fd >= 0) ::close(g_fd);
  g_fd = -1;
  g_path = log_file;
  if (rank == 0 && !log_file.empty()) g_fd = open_for_append(log_file, "log.txt");
}

// Open MPI gives local ranks a pseudo-terminal even when mpirun's own output goes to a file or
// pipe, so under mpirun ask whether mpirun's stdout (our parent's) is a terminal.
bool interactive() {
  static const bool tty = [] {
    if (const char* v = std::getenv("DPT_PROGRESS")) return std::string(v) == "1";
    if (::isatty(STDOUT_FILENO) != 1) return false;
    if (!std::getenv("OMPI_COMM_WORLD_SIZE")) return true;
    const std::string parent_out = "/proc/" + std::to_string(::getppid()) + "/fd/1";
    const int fd = ::open(parent_out.c_str(), O_WRONLY | O_NOCTTY);
    const bool parent_tty = fd >= 0 && ::isatty(fd) == 1;
    if (fd >= 0) ::close(fd);
    return parent_tty;
  }();
  return tty;
}

void info(const std::string& line) {
  if (g_rank != 0) return;
  if (g_progress_open) std::printf("\r\033[K");
  g_progress_open = false;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (g_fd >= 0) {
    const std::string text = line + "\n";
    // A log that silently stops is worse than a stopped run.
    DPT_CHECK(write_all(g_fd, text.data(), text.size()),
              "cannot append to '" << g_path << "'" << write_failure_hint(g_path));
  }
}

void warn(const std::string& line) { info("Warning: " + line); }

std::string format(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string bar(int64_t done, int64_t total) {
  const int width = 30;
  const int filled = int(width * done / std::max<int64_t>(total, 1));
  std::string b = "[" + std::string(size_t(filled), '=');
  if (filled < width) b += ">" + std::string(size_t(width - filled - 1), '.');
  return b + "]";
}

std::string eta(double seconds) {
  const int64_t t = int64_t(seconds + 0.5);
  char buf[32];
  if (t < 60) {
    std::snprintf(buf, sizeof buf, "%llds", (long long)t);
  } else if (t < 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(t / 60), (long long)(t % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(t / 3600),
                  (long long)(t / 60 % 60), (long long)(t % 60));
  }
  return buf;
}

void progress(const std::string& line) {
  if (g_rank != 0 || !interactive()) return;
  std::printf("\r\033[K%s", line.c_str());
  std::fflush(stdout);
  g_progress_open = true;
}

}  // namespace dpt::log
