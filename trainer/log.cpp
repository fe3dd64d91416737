// Rank-0 logging to stdout and log.txt, with a redrawn progress line only on a terminal.
#include "trainer/log.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace dpt::log {

namespace {
int g_rank = 0;
std::ofstream g_file;
bool g_progress_open = false;
}  // namespace

void init(int rank, const std::string& log_file) {
  g_rank = rank;
  if (rank == 0 && !log_file.empty()) g_file.open(log_file, std::ios::app);
}

bool interactive() { return ::isatty(STDOUT_FILENO) == 1; }

void info(const std::string& line) {
  if (g_rank != 0) return;
  if (g_progress_open) std::printf("\r\033[K");
  g_progress_open = false;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (g_file) g_file << line << "\n" << std::flush;
}

void progress(const std::string& line) {
  if (g_rank != 0 || !interactive()) return;
  std::printf("\r\033[K%s", line.c_str());
  std::fflush(stdout);
  g_progress_open = true;
}

void close() {
  if (g_file) g_file.close();
}

}  // namespace dpt::log
