// The prepare swap (Note [prepare swap]): staging beside --out, a manifest, one folder exchange.
#include "data/dataset_swap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "data/hdf5_util.h"

namespace dpt {

namespace {

namespace fs = std::filesystem;

// --out as a real folder path: a link the user made to a data folder is followed (the swap
// must replace the folder, not the link), trailing slashes dropped.
std::string resolve_out(const std::string& out_dir) {
  std::string out = out_dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  std::error_code ec;
  if (fs::is_symlink(out, ec)) out = fs::canonical(out, ec).string();
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

// A shard file dptrain's prepare wrote (attributes only it sets); false for anything else.
bool written_by_prepare(const std::string& path) {
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
      "prepare_id " + prepare_id + "\ndataset " + dataset + "\n";
  for (const auto& n : names) text += "file " + n + "\n";
  write_file_atomically(path, text);
}

std::string strerror_of(int err) { return std::strerror(err); }

}  // namespace

std::vector<std::string> dataset_files_in(const std::string& dir, const std::string& dataset) {
  std::vector<std::string> files;
  const std::string manifest = read_file(dir + "/" + kDatasetManifest);
  if (!manifest.empty()) {
    size_t at = 0;
    while (at < manifest.size()) {
      const size_t end = std::min(manifest.find('\n', at), manifest.size());
      const std::string line = manifest.substr(at, end - at);
      // Only plain names: a manifest never sends a deletion outside its folder.
      if (line.rfind("file ", 0) == 0 && line.find('/') == std::string::npos && line.size() > 5 &&
          line.substr(5) != "." && line.substr(5) != "..")
        files.push_back(line.substr(5));
      at = end + 1;
    }
    return files;
  }
  for (const auto& n : list_directory(dir))
    if (is_dataset_name(n, dataset) && written_by_prepare(dir + "/" + n)) files.push_back(n);
  return files;
}

std::string make_staging_folder(const std::string& out_dir) {
  const std::string out = resolve_out(out_dir);
  const auto [parent, name] = parent_and_name(out);
  make_directories(parent);
  // Staging folders of prepares that died: this exact pattern, a dead PID, this user's.
  const std::regex mine("\\." + std::regex_replace(name, std::regex(R"([.^$|()\[\]{}*+?\\])"),
                                                   R"(\$&)") +
                        R"(\.prepare-([0-9]+))");
  std::smatch m;
  for (const auto& n : list_directory(parent)) {
    struct stat st;
    if (!std::regex_match(n, m, mine) || !process_is_gone(std::atol(m[1].str().c_str())) ||
        ::lstat((parent + "/" + n).c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != ::geteuid())
      continue;
    std::error_code ec;
    fs::remove_all(parent + "/" + n, ec);
  }
  const std::string staging = parent + "/." + name + ".prepare-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(staging, ec);  // this PID's own name
  DPT_CHECK(::mkdir(staging.c_str(), 0755) == 0,
            "cannot create '" << staging << "' beside --out '" << out_dir
                              << "': " << strerror_of(errno) << write_failure_hint(parent));
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
  std::vector<std::string> old_files, linked, move_after;
  if (exists) {
    const auto ours = dataset_files_in(out, dataset);
    const std::set<std::string> old(ours.begin(), ours.end());
    old_files = ours;
    // Everything else in --out is the user's: it stays, and is never replaced.
    for (const auto& n : list_directory(out)) {
      if (old.count(n) || n == kDatasetManifest) continue;
      DPT_CHECK(!fresh.count(n),
                "--out '" << out_dir << "' holds '" << n
                          << "', which no earlier dptrain prepare wrote there, and this prepare "
                             "would replace it: move it away (or give another --out)");
      struct stat st;
      if (::lstat((out + "/" + n).c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
          ::link((out + "/" + n).c_str(), (staging + "/" + n).c_str()) == 0)
        linked.push_back(n);
      else
        move_after.push_back(n);  // folders, links, files that cannot be hard-linked
    }
    ::chmod(staging.c_str(), out_st.st_mode & 07777);
  }
  write_manifest(staging + "/" + kDatasetManifest, dataset, prepare_id, names);
  sync_directory(staging);

  if (!exists) {
    DPT_CHECK(::rename(staging.c_str(), out.c_str()) == 0,
              "cannot move '" << staging << "' to '" << out << "': " << strerror_of(errno));
    sync_directory(parent_and_name(out).first);
    return "";
  }
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) {
    sync_directory(parent_and_name(out).first);
    const std::string& old_dir = staging;  // the previous folder now lies here
    for (const auto& n : move_after) ::rename((old_dir + "/" + n).c_str(), (out + "/" + n).c_str());
    for (const auto& list : {old_files, linked})
      for (const auto& n : list) ::unlink((old_dir + "/" + n).c_str());
    ::unlink((old_dir + "/" + kDatasetManifest).c_str());
    if (::rmdir(old_dir.c_str()) != 0)
      return "left '" + old_dir + "': it holds files that appeared in --out during the swap";
    return "";
  }
  const int err = errno;
  DPT_CHECK(err == EINVAL || err == ENOSYS || err == EBUSY || err == EXDEV || err == ENOTSUP,
            "cannot swap '" << staging << "' with '" << out << "': " << strerror_of(err));
  // File by file: the new files replace the old names, old files the new dataset lacks go.
  for (const auto& n : names) rename_durably(staging + "/" + n, out + "/" + n);
  rename_durably(staging + "/" + kDatasetManifest, out + "/" + kDatasetManifest);
  for (const auto& n : old_files)
    if (!fresh.count(n)) ::unlink((out + "/" + n).c_str());
  sync_directory(out);
  std::error_code ec;
  fs::remove_all(staging, ec);  // only hard links of the user's files are left there
  return "'" + out_dir + "' cannot be swapped as a whole on this filesystem (" +
         strerror_of(err) + "): its files were replaced one by one";
}

}  // namespace dpt
