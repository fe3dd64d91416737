// File-system helpers: mkdir -p, statvfs-based disk-full hints, write-fsync-rename.
#include "core/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/safe_files.h"

namespace dpt {

namespace {
std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

void make_directories(const std::string& dir) {
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if ((i == dir.size() || dir[i] == '/') && !cur.empty()) ::mkdir(cur.c_str(), 0755);
    if (i < dir.size()) cur += dir[i];
  }
  struct stat st;
  DPT_CHECK(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode),
            "cannot create directory '" << dir << "' (check the path and permissions)");
}

std::string write_failure_hint(const std::string& path) {
  struct stat st;
  const std::string dir =
      ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? path : parent_of(path);
  struct statvfs fs;
  if (::statvfs(dir.c_str(), &fs) == 0) {
    const unsigned long long free_bytes = (unsigned long long)fs.f_bavail * fs.f_frsize;
    // Below 1 MiB nothing dptrain writes fits any more: call it full.
    if (free_bytes < (1ull << 20))
      return " (the disk holding '" + dir + "' is full: " + std::to_string(free_bytes / 1024) +
             " KiB free; free some space or choose another directory)";
  }
  return " (check that '" + dir + "' is writable and has free space)";
}

void sync_directory(const std::string& dir) { fsync_path(dir, O_RDONLY | O_DIRECTORY); }

void rename_durably(const std::string& from, const std::string& to) {
  DPT_CHECK(std::rename(from.c_str(), to.c_str()) == 0,
            "cannot rename '" << from << "' to '" << to << "': " << std::strerror(errno));
  fsync_path(parent_of(to), O_RDONLY | O_DIRECTORY);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  // Note [file safety] (safe_files.h): the temporary is created exclusively, never through a
  // link; the rename replaces a link at path itself, never its target.
  const std::string tmp = fresh_temporary(path);
  const int fd = create_new_file(tmp, "the temporary file");
  size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += size_t(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    DPT_FAIL("cannot write '" << path << "': " << std::strerror(err) << write_failure_hint(path));
  }
  try {
    rename_durably(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());  // never a temporary left beside a failed output
    throw;
  }
}

std::string read_file(const std::string& path) {
  // A FIFO or device would block or never end: only regular files are read.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    require_regular_file(path, "the file");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> list_directory(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool process_is_gone(long pid) { return pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH; }

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  for (const auto& n : list_directory(dir))
    if (is_own_stale_temporary(dir, n) && ::unlink((dir + "/" + n).c_str()) == 0)
      removed.push_back(dir + "/" + n);
  return removed;
}

}  // namespace dpt
