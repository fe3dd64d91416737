// Link-refusing, exclusive and append-only file opening, user/own folders, own temporaries.
#include "core/safe_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <regex>

#include "core/error.h"
#include "core/files.h"

namespace dpt {

namespace {

bool is_link(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

[[noreturn]] void fail_link(const std::string& path, const std::string& what) {
  std::string target(4096, '\0');
  const ssize_t n = ::readlink(path.c_str(), target.data(), target.size() - 1);
  target.resize(n > 0 ? size_t(n) : 0);
  DPT_FAIL(what << " '" << path << "' is a symbolic link" << (n > 0 ? " to '" + target + "'" : "")
                << ", and dptrain never writes through a link it did not make (someone could "
                   "point it at any file): remove the link, or choose another directory");
}

std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace

void refuse_link(const std::string& path, const std::string& what) {
  if (is_link(path)) fail_link(path, what);
}

int create_new_file(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) return fd;
  const int err = errno;
  if (is_link(path)) fail_link(path, what);
  DPT_FAIL("cannot create " << what << " '" << path << "': " << std::strerror(err)
                            << write_failure_hint(path));
}

int open_for_append(const std::string& path, const std::string& what) {
  // O_NONBLOCK: a planted FIFO would block open() until someone reads it.
  const int fd = ::open(path.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0 && errno == ENXIO) {  // a FIFO nobody reads
    DPT_FAIL(what << " '" << path << "' is a FIFO (named pipe), not a file dptrain can append "
                  << "to: remove it");
  }
  if (fd < 0) {
    const int err = errno;
    if (is_link(path)) fail_link(path, what);
    DPT_FAIL("cannot write " << what << " '" << path << "': " << std::strerror(err)
                             << write_failure_hint(path));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    DPT_FAIL(what << " '" << path << "' is " << kind_of(st.st_mode)
                  << ", not a file dptrain can append to: remove it");
  }
  if (st.st_nlink > 1) {  // another name of the same file would change with it
    ::close(fd);
    DPT_FAIL(what << " '" << path << "' has " << st.st_nlink
                  << " names (hard links): appending would change the others too; remove it "
                     "or replace it with a copy");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool write_all(int fd, const void* bytes, size_t n) {
  const char* p = static_cast<const char*>(bytes);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= size_t(w);
  }
  return true;
}

std::string fresh_temporary(const std::string& path) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());  // ours by name (this PID); a link goes, its target stays
  return tmp;
}

void make_user_directory(const std::string& dir, const std::string& what) {
  // Checked before anything is created: each component that exists as a link must be this
  // user's or root's (system links such as /scratch -> /lustre/...); a link planted by another
  // user is refused, for root too.
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if ((i == dir.size() || dir[i] == '/') && !cur.empty() && cur != ".") {
      struct stat st;
      if (::lstat(cur.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid != ::geteuid() &&
          st.st_uid != 0)
        DPT_FAIL(what << " '" << dir << "' goes through '" << cur << "', a symbolic link owned "
                      << "by another user (uid " << st.st_uid
                      << "): dptrain does not write "
                         "where someone else points it; choose another directory");
    }
    if (i < dir.size()) cur += dir[i];
  }
  make_directories(dir);
}

void make_own_directory(const std::string& dir, const std::string& what) {
  if (::mkdir(dir.c_str(), 0755) == 0) return;
  const int err = errno;
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0)
    DPT_FAIL("cannot create " << what << " '" << dir << "': " << std::strerror(err));
  if (S_ISLNK(st.st_mode)) fail_link(dir, what);
  DPT_CHECK(S_ISDIR(st.st_mode), what << " '" << dir << "' exists and is " << kind_of(st.st_mode)
                                      << ", not a folder: remove it");
}

bool is_own_stale_temporary(const std::string& dir, const std::string& name) {
  static const std::regex own(
      R"((ckpt-\d{4}-\d{8}\.h5|config\.yaml|summary\.yaml|metrics\.csv|events\.out\.tfevents\.[^/]+)\.tmp-(\d+))");
  std::smatch m;
  if (!std::regex_match(name, m, own)) return false;
  if (!process_is_gone(std::atol(m[2].str().c_str()))) return false;
  struct stat st;
  return ::lstat((dir + "/" + name).c_str(), &st) == 0 && st.st_uid == ::geteuid() &&
         (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
}

void require_regular_file(const std::string& path, const std::string& what) {
  struct stat st;
  DPT_CHECK(::stat(path.c_str(), &st) == 0, what << " '" << path << "' does not exist");
  DPT_CHECK(S_ISREG(st.st_mode), what << " '" << path << "' is " << kind_of(st.st_mode)
                                      << ", not a file: give the path of the file itself");
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat x, y;
  return ::stat(a.c_str(), &x) == 0 && ::stat(b.c_str(), &y) == 0 && x.st_dev == y.st_dev &&
         x.st_ino == y.st_ino;
}

std::vector<std::string> dead_own_folders(const std::string& dir, const std::string& pattern,
                                          int pid_group) {
  const std::regex re(pattern);
  std::smatch m;
  std::vector<std::string> found;
  for (const auto& n : list_directory(dir)) {
    struct stat st;
    if (std::regex_match(n, m, re) &&
        process_is_gone(std::atol(m[size_t(pid_group)].str().c_str())) &&
        ::lstat((dir + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
        st.st_uid == ::geteuid())
      found.push_back(dir + "/" + n);
  }
  return found;
}

void check_output_path(const std::string& out, const std::string& what,
                       const std::vector<std::string>& inputs) {
  for (const std::string& in : inputs)
    DPT_CHECK(!same_file(out, in), what << " '" << out << "' is the input '" << in
                                        << "' itself: writing it would replace what is read; "
                                           "name another output file");
  struct stat st;
  if (::stat(out.c_str(), &st) == 0)  // through a link: what the path shows
    DPT_CHECK(S_ISREG(st.st_mode), what << " '" << out << "' is " << kind_of(st.st_mode)
                                        << ", not a file: dptrain writes a new file and renames "
                                           "it into place; name a file path");
}

}  // namespace dpt
