// Run-directory files: checked metrics.csv appends, atomic config/summary, flock, leftovers.
#include "trainer/run_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/files.h"
#include "core/safe_files.h"

namespace dpt {

namespace {
const char* kHeader =
    "epoch,step,loss,accuracy,val_loss,val_accuracy,lr,images_per_sec,allreduce_sec,"
    "elapsed_sec,skipped_steps\n";

std::string now_string(const char* format) {
  char buf[64];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}
}  // namespace

namespace {
// The step (column 2) of a metrics.csv row, or -1 for a row that is not one dptrain wrote.
int64_t row_step(const std::string& line) {
  const auto c1 = line.find(','), c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
  if (c2 == std::string::npos) return -1;
  const std::string cell = line.substr(c1 + 1, c2 - c1 - 1);
  if (cell.empty() || cell.size() > 18 || cell.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoll(cell);
}
}  // namespace

MetricsCsv::MetricsCsv(const std::string& path, int64_t keep_through_step) : path_(path) {
  refuse_link(path, "metrics.csv");
  std::string text = read_file(path);
  if (keep_through_step >= 0 && !text.empty()) {
    // Keep the header and every row whose step (column 2) is at most the checkpoint's step;
    // a row that is not dptrain's (a hand edit, a torn last line) is dropped and counted.
    std::istringstream in(text);
    std::string line, kept;
    bool first = true;
    int64_t dropped = 0;
    while (std::getline(in, line)) {
      if (first) {
        kept += line + "\n";
        first = false;
        continue;
      }
      const int64_t step = row_step(line);
      if (step < 0) {
        ++dropped;
        continue;
      }
      if (step <= keep_through_step) kept += line + "\n";
    }
    if (dropped > 0)
      dropped_rows_ = std::to_string(dropped) + " row(s) of '" + path +
                      "' were not metrics "
                      "rows (no step number in column 2) and were dropped";
    if (kept != text) write_file_atomically(path, kept);
    text = kept;
  }
  fd_ = open_for_append(path, "metrics.csv");
  if (text.empty() && !write_all(fd_, kHeader, std::strlen(kHeader)))
    DPT_FAIL("cannot write '" << path << "'" << write_failure_hint(path));
}

MetricsCsv::~MetricsCsv() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsCsv::write(const MetricsRow& r) {
  auto opt = [](double v) {
    std::ostringstream o;
    if (v >= 0) o << std::setprecision(6) << v;
    return o.str();
  };
  std::ostringstream out;
  out << r.epoch << "," << r.step << "," << std::setprecision(6) << r.loss << "," << r.accuracy
      << "," << opt(r.val_loss) << "," << opt(r.val_accuracy) << "," << r.lr << ","
      << std::setprecision(8) << r.images_per_sec << "," << r.allreduce_sec << "," << r.elapsed_sec
      << "," << r.skipped_steps << "\n";
  const std::string line = out.str();
  DPT_CHECK(write_all(fd_, line.data(), line.size()),
            "cannot append to '" << path_ << "'" << write_failure_hint(path_));
}

void write_config_file(const std::string& run_dir, const std::string& resolved_yaml) {
  write_file_atomically(run_dir + "/config.yaml", resolved_yaml);
}

void write_summary_file(const std::string& run_dir, const std::string& name, int world_size,
                        const TrainSummary& s) {
  // An emitter, not text: a run name or checkpoint path may hold ':', '#' or quotes.
  YAML::Emitter o;
  o.SetDoublePrecision(6);
  o << YAML::BeginMap << YAML::Key << "name" << YAML::Value << name << YAML::Key << "world_size"
    << YAML::Value << world_size << YAML::Key << "epochs_run" << YAML::Value << s.epochs_run
    << YAML::Key << "test_samples" << YAML::Value << s.test.count << YAML::Key << "test_accuracy"
    << YAML::Value << s.test.accuracy << YAML::Key << "test_loss" << YAML::Value << s.test.loss
    << YAML::Key << "images_per_sec" << YAML::Value << s.images_per_sec << YAML::Key
    << "seconds_per_epoch" << YAML::Value << s.seconds_per_epoch << YAML::Key << "skipped_steps"
    << YAML::Value << s.skipped_steps << YAML::Key << "precision" << YAML::Value
    << precision_name(s.precision.precision);
  if (!s.precision.reason.empty())
    o << YAML::Key << "precision_reason" << YAML::Value << "auto: " + s.precision.reason;
  o << YAML::Key << "checkpoint" << YAML::Value << s.last_checkpoint << YAML::EndMap;
  write_file_atomically(run_dir + "/summary.yaml", std::string(o.c_str()) + "\n");
}

RunLock::RunLock(const std::string& dir) {
  const std::string path = dir + "/.dptrain.lock";
  // Note [file safety]: never through a link (a planted .dptrain.lock -> ~/thesis.tex would be
  // emptied and overwritten), and never another user's lock.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0) refuse_link(path, "the run lock");
  DPT_CHECK(fd_ >= 0, "cannot create the run lock '" << path << "': " << std::strerror(errno)
                                                     << write_failure_hint(path));
  struct stat st;
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    ::close(fd_);
    fd_ = -1;
    DPT_FAIL("the run lock '" << path << "' is not a file of this user (owner uid " << st.st_uid
                              << "): '" << dir
                              << "' belongs to someone else's run; give this run another run_dir");
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = read_file(path);
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    DPT_CHECK(err != EWOULDBLOCK, "'" << dir << "' is in use by another dptrain run ("
                                      << (holder.empty() ? "unknown holder" : holder)
                                      << "); wait for it to end, or give this run another run_dir");
    DPT_FAIL("cannot lock '" << path << "': " << std::strerror(err));
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const std::string text = "PID " + std::to_string(::getpid()) + " on host " + host + ", started " +
                           now_string("%Y-%m-%d %H:%M:%S") + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, text.data(), text.size(), 0) != ssize_t(text.size())) {
    ::close(fd_);
    fd_ = -1;
    DPT_FAIL("cannot write the run lock '" << path << "'" << write_failure_hint(path));
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Empty again, so that a run which ended (or failed) leaves the run directory as it was.
  if (::ftruncate(fd_, 0) != 0) std::perror("dptrain: clearing the run lock");
  ::close(fd_);  // releases the flock
}

std::vector<std::string> earlier_run_files(const std::string& run_dir,
                                           const std::string& ckpt_dir) {
  std::vector<std::string> found;
  // Checkpoints in either folder (run_dir may be another run's checkpoint folder).
  std::vector<std::string> dirs{ckpt_dir};
  if (run_dir != ckpt_dir) dirs.push_back(run_dir);
  for (const auto& dir : dirs)
    for (const auto& n : list_directory(dir))
      if (n.rfind("ckpt-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".h5")
        found.push_back(dir + "/" + n);
  for (const char* n :
       {"metrics.csv", "summary.yaml", "config.yaml", "log.txt", "tensorboard", "train.trace.json",
        kRunMarker})
    if (::faccessat(AT_FDCWD, (run_dir + "/" + n).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0)
      found.push_back(run_dir + "/" + n);
  return found;
}

std::string enclosing_run(const std::string& dir, const std::string& own_run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path own = fs::weakly_canonical(own_run_dir, ec);
  fs::path p = fs::weakly_canonical(dir, ec);
  for (;;) {
    if (p != own && ::access((p / kRunMarker).c_str(), F_OK) == 0) return p.string();
    if (!p.has_parent_path() || p.parent_path() == p) return "";
    p = p.parent_path();
  }
}

void write_run_marker(const std::string& run_dir, const std::string& run_id) {
  write_file_atomically(run_dir + "/" + kRunMarker, "run_id: " + run_id + "\n");
}

std::string read_run_marker(const std::string& run_dir) {
  const std::string text = read_file(run_dir + "/" + kRunMarker);
  const std::string key = "run_id: ";
  if (text.rfind(key, 0) != 0) return "";
  std::string id = text.substr(key.size());
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

namespace {
// A folder of the given stem that did not exist before (mkdir is the claim): stem, stem-2, ...
std::string claim_new_folder(const std::string& stem) {
  for (int k = 1; k < 1000; ++k) {
    const std::string d = k == 1 ? stem : stem + "-" + std::to_string(k);
    if (::mkdir(d.c_str(), 0755) == 0) return d;
    DPT_CHECK(errno == EEXIST,
              "cannot create '" << d << "': " << std::strerror(errno) << write_failure_hint(d));
  }
  DPT_FAIL("cannot find a free name for '" << stem << "-N' (999 are taken)");
}
}  // namespace

std::string move_aside(const std::string& run_dir, const std::vector<std::string>& files) {
  // Into an overwritten-DATE folder that did not exist before: a second --overwrite in the same
  // second (or hour of a DST change) never renames onto the earlier one. A file that cannot be
  // renamed there because it lies on another filesystem (checkpoint.dir elsewhere) moves into an
  // overwritten-DATE folder of its own folder instead.
  const std::string stamp = "overwritten-" + now_string("%Y%m%d-%H%M%S");
  const std::string main_dest = claim_new_folder(run_dir + "/" + stamp);
  std::map<std::string, std::string> other;  // folder on another filesystem -> its destination
  std::string said = main_dest;
  for (const auto& f : files) {
    const std::string name = f.substr(f.rfind('/') + 1);
    if (std::rename(f.c_str(), (main_dest + "/" + name).c_str()) == 0) continue;
    DPT_CHECK(errno == EXDEV,
              "cannot move '" << f << "' to '" << main_dest << "': " << std::strerror(errno));
    const std::string parent = f.substr(0, f.rfind('/'));
    auto it = other.find(parent);
    if (it == other.end()) {
      it = other.emplace(parent, claim_new_folder(parent + "/" + stamp)).first;
      said += " and " + it->second;
    }
    rename_durably(f, it->second + "/" + name);
  }
  sync_directory(main_dest);  // the renames survive a crash
  sync_directory(run_dir);
  return said;
}

}  // namespace dpt
