// The prepare swap (Note [prepare swap]): staging beside --out, a manifest, one folder exchange.
#include "data/dataset_swap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/safe_files.h"
#include "data/hdf5_util.h"

namespace dpt {

namespace {

namespace fs = std::filesystem;

// --out as an absolute folder path: a link the user made to a data folder is followed (the
// swap must replace the folder, not the link), '.' and '..' resolved, trailing slashes dropped.
std::string resolve_out(const std::string& out_dir) {
  std::error_code ec;
  std::string out = fs::absolute(out_dir, ec).lexically_normal().string();  // '.', 'a/../b'
  if (ec) out = out_dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (fs::is_symlink(out, ec)) {
    const std::string target = fs::canonical(out, ec).string();
    DPT_CHECK(!ec && !target.empty(),
              "--out '" << out_dir
                        << "' is a link to nothing: give an existing folder or a new "
                           "path");
    out = target;
  }
  return out;
}

std::pair<std::string, std::string> parent_and_name(const std::string& out) {
  const size_t slash = out.rfind('/');
  if (slash == std::string::npos) return {".", out};
  return {slash == 0 ? "/" : out.substr(0, slash), out.substr(slash + 1)};
}

bool is_dataset_name(const std::string& name, const std::string& dataset) {
  return (name.rfind(dataset + "-train-", 0) == 0 || name == dataset + "-test.h5") &&
         name.size() > 3 && name.compare(name.size() - 3, 3, ".h5") == 0;
}

bool is_regular(const std::string& path, struct stat* st = nullptr) {
  struct stat s;
  const bool ok = ::lstat(path.c_str(), &s) == 0 && S_ISREG(s.st_mode);
  if (st) *st = s;
  return ok;
}

// A shard file dptrain's prepare wrote (attributes only it sets); false for anything else.
bool written_by_prepare(const std::string& path) {
  if (!is_regular(path)) return false;
  try {
    h5::Handle f = h5::open_file(path);
    return h5::has_attr(f, "split") && h5::has_attr(f, "source_md5") &&
           h5::has_attr(f, "format_version");
  } catch (const Error&) {
    return false;
  }
}

void write_manifest(const std::string& path, const std::string& dataset,
                    const std::string& prepare_id, const std::vector<std::string>& names) {
  std::string text =
      "# dptrain dataset manifest: the files the prepare that wrote this folder owns\n"
      "prepare_id " +
      prepare_id + "\ndataset " + dataset + "\n";
  for (const auto& n : names) text += "file " + n + "\n";
  write_file_atomically(path, text);
}

}  // namespace

void discard_staging(const std::string& dir) {
  // Never exchanged (its marker is there): only dptrain's files and hard links, all of it goes.
  if (is_regular(dir + "/" + kStagingMarker)) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return;
  }
  for (const auto& n : list_directory(dir)) {
    const std::string p = dir + "/" + n;
    struct stat st;
    if (n == kDatasetManifest || (is_regular(p, &st) && st.st_nlink > 1) || written_by_prepare(p))
      ::unlink(p.c_str());
  }
  if (::rmdir(dir.c_str()) != 0)
    std::fprintf(stderr,
                 "dptrain: prepare: left '%s', a staging folder of dptrain prepare: it holds "
                 "files that are not dptrain's (move them back where they belong, then remove "
                 "it)\n",
                 dir.c_str());
}

namespace {

std::string regex_quote(const std::string& s) {
  return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

std::string strerror_of(int err) { return std::strerror(err); }

std::string this_host() {
  char h[256] = {0};
  ::gethostname(h, sizeof h - 1);
  std::string s = h;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  return s.empty() ? "host" : s;
}

// One file at a time (each rename atomic): where folders cannot be exchanged.
std::string install_file_by_file(const std::string& staging, const std::string& out,
                                 const std::string& out_dir, const std::vector<std::string>& names,
                                 const std::vector<std::string>& old_files,
                                 const std::string& why) {
  const std::set<std::string> fresh(names.begin(), names.end());
  for (const auto& n : names) rename_durably(staging + "/" + n, out + "/" + n);
  rename_durably(staging + "/" + kDatasetManifest, out + "/" + kDatasetManifest);
  ::unlink((staging + "/" + kStagingMarker).c_str());
  for (const auto& n : old_files)
    if (!fresh.count(n)) ::unlink((out + "/" + n).c_str());
  sync_directory(out);
  for (const auto& n : list_directory(staging)) ::unlink((staging + "/" + n).c_str());
  ::rmdir(staging.c_str());
  return "'" + out_dir + "' " + why + ": its files were replaced one by one";
}

}  // namespace

std::vector<std::string> dataset_files_in(const std::string& dir, const std::string& dataset) {
  std::vector<std::string> files;
  const std::string manifest_path = dir + "/" + kDatasetManifest;
  const std::string manifest = is_regular(manifest_path) ? read_file(manifest_path) : "";
  if (manifest.find("\ndataset " + dataset + "\n") != std::string::npos) {
    size_t at = 0;
    while (at < manifest.size()) {
      const size_t end = std::min(manifest.find('\n', at), manifest.size());
      const std::string line = manifest.substr(at, end - at);
      // Only this dataset's shard names: a manifest never sends a deletion elsewhere.
      if (line.rfind("file ", 0) == 0 && is_dataset_name(line.substr(5), dataset) &&
          line.find('/') == std::string::npos)
        files.push_back(line.substr(5));
      at = end + 1;
    }
    return files;
  }
  // No manifest of this dataset (a prepare before manifests): the shards dptrain wrote.
  for (const auto& n : list_directory(dir))
    if (is_dataset_name(n, dataset) && written_by_prepare(dir + "/" + n)) files.push_back(n);
  return files;
}

std::string make_staging_folder(const std::string& out_dir) {
  const std::string out = resolve_out(out_dir);
  const auto [parent, name] = parent_and_name(out);
  make_directories(parent);
  // Named by host and PID: on a shared filesystem a PID says nothing about another host's.
  const std::string host = this_host();
  // Staging folders of prepares that died on this host: this exact pattern, a dead PID, this
  // user's.
  for (const auto& d : dead_own_folders(
           parent, "\\." + regex_quote(name + ".prepare-" + host) + "-([0-9]{1,9})", 1))
    discard_staging(d);
  // Inside --out: this host's, and those of prepares before host names (a bare PID).
  for (const auto& d :
       dead_own_folders(out, "\\.prepare-(?:" + regex_quote(host) + "-)?([0-9]{1,9})", 1))
    discard_staging(d);
  // Beside --out when the folder can be exchanged there; inside it when --out is a mount point
  // or its parent is not writable (then the files are replaced one by one).
  struct stat out_st, parent_st;
  const bool beside =
      ::access(parent.c_str(), W_OK) == 0 &&
      (::stat(out.c_str(), &out_st) != 0 ||
       (::stat(parent.c_str(), &parent_st) == 0 && out_st.st_dev == parent_st.st_dev));
  const std::string pid = host + "-" + std::to_string(::getpid());
  const std::string staging =
      beside ? parent + "/." + name + ".prepare-" + pid : out + "/.prepare-" + pid;
  if (!beside) make_directories(out);
  std::error_code ec;
  fs::remove_all(staging, ec);  // this PID's own name, of a process long gone
  DPT_CHECK(::mkdir(staging.c_str(), 0755) == 0,
            "cannot create '" << staging << "' for --out '" << out_dir
                              << "': " << strerror_of(errno) << write_failure_hint(staging));
  ::close(create_new_file(staging + "/" + kStagingMarker, "the staging marker"));
  return staging;
}

std::string install_dataset(const std::string& staging, const std::string& out_dir,
                            const std::string& dataset, const std::string& prepare_id,
                            const std::vector<std::string>& names) {
  const std::string out = resolve_out(out_dir);
  const std::set<std::string> fresh(names.begin(), names.end());
  struct stat out_st;
  const bool exists = ::stat(out.c_str(), &out_st) == 0;
  DPT_CHECK(!exists || S_ISDIR(out_st.st_mode),
            "--out '" << out_dir << "' exists and is not a folder; give a folder");
  const bool inside = parent_and_name(staging).first == out;
  std::vector<std::string> old_files, move_after;
  std::map<std::string, ino_t> linked;  // carried by hard link, and the inode carried
  if (exists) {
    old_files = dataset_files_in(out, dataset);
    const std::set<std::string> old(old_files.begin(), old_files.end());
    // Everything else in --out is the user's: it stays, and is never replaced.
    for (const auto& n : list_directory(out)) {
      if (old.count(n) || n == kDatasetManifest || n == kStagingMarker || out + "/" + n == staging)
        continue;
      DPT_CHECK(!fresh.count(n),
                "--out '" << out_dir << "' holds '" << n
                          << "', which no earlier dptrain prepare wrote there, and this prepare "
                             "would replace it: move it away (or give another --out)");
      if (inside) continue;
      struct stat st;
      if (is_regular(out + "/" + n, &st) &&
          ::link((out + "/" + n).c_str(), (staging + "/" + n).c_str()) == 0)
        linked[n] = st.st_ino;
      else
        move_after.push_back(n);  // folders, links, files that cannot be hard-linked
    }
    if (!inside) {  // the swapped-in folder keeps the old one's mode and group (setgid folders)
      if (::chown(staging.c_str(), uid_t(-1), out_st.st_gid) != 0) {
      }  // not a member of that group: the user's default group stays
      ::chmod(staging.c_str(), out_st.st_mode & 07777);
    }
  }
  write_manifest(staging + "/" + kDatasetManifest, dataset, prepare_id, names);
  if (inside) ::unlink((staging + "/" + kStagingMarker).c_str());  // its folder is not swapped
  sync_directory(staging);
  if (inside)
    return install_file_by_file(staging, out, out_dir, names, old_files,
                                "is a mount point or its parent is not writable");
  if (!exists) {
    DPT_CHECK(::rename(staging.c_str(), out.c_str()) == 0,
              "cannot move '" << staging << "' to '" << out << "': " << strerror_of(errno));
    ::unlink((out + "/" + kStagingMarker).c_str());
    sync_directory(parent_and_name(out).first);
    return "";
  }
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    DPT_CHECK(err == EINVAL || err == ENOSYS || err == EBUSY || err == ENOTSUP,
              "cannot swap '" << staging << "' with '" << out << "': " << strerror_of(err));
    return install_file_by_file(
        staging, out, out_dir, names, old_files,
        "cannot be swapped as a whole on this filesystem (" + strerror_of(err) + ")");
  }
  sync_directory(parent_and_name(out).first);
  ::unlink((out + "/" + kStagingMarker).c_str());
  // The previous folder now lies at the staging path: the user's folders back first, then
  // the previous dataset's files go, and the hard links whose file did not change meanwhile.
  const std::string& old_dir = staging;
  std::vector<std::string> left;
  for (const auto& n : move_after)
    if (::rename((old_dir + "/" + n).c_str(), (out + "/" + n).c_str()) != 0) left.push_back(n);
  for (const auto& n : old_files)
    if (is_regular(old_dir + "/" + n)) ::unlink((old_dir + "/" + n).c_str());
  for (const auto& [n, ino] : linked) {
    struct stat st;
    if (is_regular(old_dir + "/" + n, &st) && st.st_ino == ino)
      ::unlink((old_dir + "/" + n).c_str());
  }
  ::unlink((old_dir + "/" + kDatasetManifest).c_str());
  if (::rmdir(old_dir.c_str()) != 0) {
    std::string what;
    for (const auto& n : left) what += (what.empty() ? " (" : ", ") + n;
    return "left '" + old_dir + "': it holds files that changed in --out during the swap" +
           (what.empty() ? "" : what + " could not be moved back)");
  }
  return "";
}

}  // namespace dpt
