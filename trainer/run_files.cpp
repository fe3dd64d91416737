// Run-directory files: checked metrics.csv appends, atomic config/summary, flock, leftovers.
#include "trainer/run_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <iomanip>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/files.h"

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

MetricsCsv::MetricsCsv(const std::string& path, int64_t keep_through_step) : path_(path) {
  std::string text = read_file(path);
  if (keep_through_step >= 0 && !text.empty()) {
    // Keep the header and every row whose step (column 2) is at most the checkpoint's step.
    std::istringstream in(text);
    std::string line, kept;
    bool first = true;
    while (std::getline(in, line)) {
      if (first) {
        kept += line + "\n";
        first = false;
        continue;
      }
      const auto c1 = line.find(','), c2 = line.find(',', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) continue;
      if (std::stoll(line.substr(c1 + 1, c2 - c1 - 1)) <= keep_through_step) kept += line + "\n";
    }
    if (kept != text) write_file_atomically(path, kept);
    text = kept;
  }
  out_.open(path, std::ios::app);
  DPT_CHECK(out_, "cannot write '" << path << "'" << write_failure_hint(path));
  if (text.empty()) {
    out_ << kHeader << std::flush;
    DPT_CHECK(out_, "cannot write '" << path << "'" << write_failure_hint(path));
  }
}

void MetricsCsv::write(const MetricsRow& r) {
  auto opt = [](double v) {
    std::ostringstream o;
    if (v >= 0) o << std::setprecision(6) << v;
    return o.str();
  };
  out_ << r.epoch << "," << r.step << "," << std::setprecision(6) << r.loss << "," << r.accuracy
       << "," << opt(r.val_loss) << "," << opt(r.val_accuracy) << "," << r.lr << ","
       << std::setprecision(8) << r.images_per_sec << "," << r.allreduce_sec << "," << r.elapsed_sec
       << "," << r.skipped_steps << "\n"
       << std::flush;
  DPT_CHECK(out_, "cannot append to '" << path_ << "'" << write_failure_hint(path_));
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
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  DPT_CHECK(fd_ >= 0, "cannot create the run lock '" << path << "': " << std::strerror(errno)
                                                     << write_failure_hint(path));
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
  for (const auto& n : list_directory(ckpt_dir))
    if (n.rfind("ckpt-", 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".h5")
      found.push_back(ckpt_dir + "/" + n);
  for (const char* n : {"metrics.csv", "summary.yaml"})
    if (::access((run_dir + "/" + n).c_str(), F_OK) == 0) found.push_back(run_dir + "/" + n);
  return found;
}

std::string move_aside(const std::string& run_dir, const std::vector<std::string>& files) {
  const std::string dest = run_dir + "/overwritten-" + now_string("%Y%m%d-%H%M%S");
  make_directories(dest);
  std::vector<std::string> all = files;
  for (const char* n : {"log.txt", "config.yaml", "tensorboard"})  // the earlier run's too
    if (::access((run_dir + "/" + n).c_str(), F_OK) == 0) all.push_back(run_dir + "/" + n);
  for (const auto& f : all) rename_durably(f, dest + "/" + f.substr(f.rfind('/') + 1));
  return dest;
}

}  // namespace dpt
