// Run-directory files: directory creation and metrics.csv with a fixed column set.
#include "trainer/run_files.h"

#include <sys/stat.h>

#include <iomanip>

#include "models/core/error.h"

namespace dpt {

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

MetricsCsv::MetricsCsv(const std::string& path) {
  struct stat st;
  const bool fresh = ::stat(path.c_str(), &st) != 0 || st.st_size == 0;
  out_.open(path, std::ios::app);
  DPT_CHECK(out_, "cannot write '" << path << "'");
  if (fresh)
    out_ << "epoch,step,loss,accuracy,val_loss,val_accuracy,lr,images_per_sec,allreduce_sec,"
            "elapsed_sec\n";
}

void MetricsCsv::write(const MetricsRow& r) {
  auto opt = [](double v) {
    std::ostringstream o;
    if (v >= 0) o << std::setprecision(6) << v;
    return o.str();
  };
  out_ << r.epoch << "," << r.step << "," << std::setprecision(6) << r.loss << "," << r.accuracy
       << "," << opt(r.val_loss) << "," << opt(r.val_accuracy) << "," << r.lr << ","
       << std::setprecision(8) << r.images_per_sec << "," << r.allreduce_sec << ","
       << r.elapsed_sec << "\n"
       << std::flush;
}

}  // namespace dpt
