// TensorBoard event files: TFRecord framing with masked CRC32C, Event/Summary protobufs, resume.
#include "trainer/sharing/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/safe_files.h"
#include "trainer/sharing/tensorboard_event.pb.h"

namespace dpt {

namespace {

namespace tb = dptrain::tensorboard;

// CRC32C (Castagnoli), as TFRecord uses; Debian 12 packages no libcrc32c, and a table is
// 10 lines. Event files are a few KB per epoch, so speed does not matter.
uint32_t crc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

// TFRecord: uint64 length, masked CRC of the length, the data, masked CRC of the data.
std::string record(const std::string& data) {
  const uint64_t len = data.size();
  const uint32_t len_crc = masked_crc32c(&len, 8),
                 data_crc = masked_crc32c(data.data(), data.size());
  std::string r(reinterpret_cast<const char*>(&len), 8);
  r.append(reinterpret_cast<const char*>(&len_crc), 4);
  r += data;
  r.append(reinterpret_cast<const char*>(&data_crc), 4);
  return r;
}

double wall_time() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Note [event protos]: the records are Event messages of trainer/sharing/tensorboard_event.proto
// (TensorFlow's field numbers), encoded and decoded by protobuf's generated classes.
tb::Event event_at(int64_t step) {
  tb::Event e;
  e.set_wall_time(wall_time());
  e.set_step(step);
  return e;
}

std::string scalar_event(const std::string& tag, double v, int64_t step) {
  tb::Event e = event_at(step);
  tb::Summary::Value* value = e.mutable_summary()->add_value();
  value->set_tag(tag);
  value->set_simple_value(float(v));
  return e.SerializeAsString();
}

// The text plugin's summary: a scalar DT_STRING tensor with plugin_name "text" (version 0: no
// content).
std::string text_event(const std::string& tag, const std::string& text, int64_t step) {
  tb::Event e = event_at(step);
  tb::Summary::Value* value = e.mutable_summary()->add_value();
  value->set_tag(tag);
  tb::TensorProto* tensor = value->mutable_tensor();
  tensor->set_dtype(tb::DT_STRING);
  tensor->mutable_tensor_shape();  // present and empty: a scalar
  tensor->add_string_val(text);
  value->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  return e.SerializeAsString();
}

// (step, tag) of an Event; tag "" for events without a summary (the file_version event), and
// (-1, "") for bytes that are no Event.
std::pair<int64_t, std::string> step_and_tag(const std::string& bytes) {
  tb::Event e;
  if (!e.ParseFromString(bytes)) return {-1, ""};
  return {e.step(),
          e.has_summary() && e.summary().value_size() > 0 ? e.summary().value(0).tag() : ""};
}

// Note [events after a resume] (tensorboard.h): rewrites each earlier file of dir without the
// records past the checkpoint. A torn last record (a crash mid-write) is dropped too.
void drop_events_after(const std::string& dir, int64_t keep_step, int64_t keep_epoch) {
  for (const auto& name : list_directory(dir)) {
    if (name.find("tfevents") == std::string::npos) continue;
    const std::string path = dir + "/" + name, bytes = read_file(path);
    std::string kept;
    for (size_t pos = 0; pos + 12 <= bytes.size();) {
      uint64_t len = 0;
      std::memcpy(&len, bytes.data() + pos, 8);
      if (bytes.size() - pos < 16 || len > bytes.size() - pos - 16) break;
      const std::string data = bytes.substr(pos + 12, len);
      uint32_t crc = 0;
      std::memcpy(&crc, bytes.data() + pos + 12 + len, 4);
      if (crc != masked_crc32c(data.data(), data.size())) break;
      const auto [step, tag] = step_and_tag(data);
      const bool per_epoch = tag.rfind("epoch_", 0) == 0 || tag.rfind("test_", 0) == 0;
      if (tag.empty() || step <= (per_epoch ? keep_epoch : keep_step)) kept += record(data);
      pos += 16 + len;
    }
    if (kept != bytes) write_file_atomically(path, kept);
  }
}

}  // namespace

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// One events.out.tfevents.* file, opened with its file_version record.
class TensorBoardWriter::EventFile {
 public:
  explicit EventFile(const std::string& dir) {
    make_own_directory(dir, "the TensorBoard folder");  // never through a planted link
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    path_ = dir + "/events.out.tfevents." + std::to_string(int64_t(wall_time())) + "." + host +
            "." + std::to_string(::getpid());
    // Never over an earlier file (a reused PID within the same second), never through a link.
    for (int k = 1; ::faccessat(AT_FDCWD, path_.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0; ++k)
      path_ += "." + std::to_string(k);
    fd_ = create_new_file(path_, "the TensorBoard event file");
    tb::Event e;
    e.set_wall_time(wall_time());
    e.set_file_version("brain.Event:2");
    write({e.SerializeAsString()});
  }
  ~EventFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const std::vector<std::string>& events) {
    std::string bytes;
    for (const auto& e : events) bytes += record(e);
    // Written at once: TensorBoard shows it now, and a crash loses nothing written.
    DPT_CHECK(write_all(fd_, bytes.data(), bytes.size()),
              "cannot append to the TensorBoard event file '"
                  << path_ << "'" << write_failure_hint(path_)
                  << "; or set train.tensorboard: false");
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t keep_through_step,
                                     int64_t keep_through_epoch, const std::string& config_yaml)
    : dir_(dir), keep_step_(keep_through_step), keep_epoch_(keep_through_epoch) {
  make_own_directory(dir, "the TensorBoard folder");  // a planted link is refused
  for (const char* run : {"/train", "/validation"}) {
    refuse_link(dir + run, "the TensorBoard folder");
    // A rewrite's temporary file holds "tfevents" in its name: TensorBoard would read it.
    remove_stale_temporaries(dir + run);
    if (keep_step_ >= 0) drop_events_after(dir + run, keep_step_, keep_epoch_);
  }
  train_ = std::make_unique<EventFile>(dir + "/train");
  // Indented: TensorBoard renders the text as Markdown, where that makes a code block.
  std::string text;
  std::istringstream in(config_yaml);
  for (std::string line; std::getline(in, line);) text += "    " + line + "\n";
  train_->write({text_event("config", text, keep_step_ >= 0 ? keep_step_ + 1 : 0)});
}

TensorBoardWriter::~TensorBoardWriter() = default;

void TensorBoardWriter::write_interval(const MetricsRow& r) {
  if (r.step <= keep_step_) return;
  train_->write({scalar_event("batch_loss", r.loss, r.step),
                 scalar_event("batch_accuracy", r.accuracy, r.step),
                 scalar_event("learning_rate", r.lr, r.step),
                 scalar_event("images_per_sec", r.images_per_sec, r.step),
                 scalar_event("allreduce_sec", r.allreduce_sec, r.step)});
}

void TensorBoardWriter::write_epoch(const MetricsRow& r) {
  const int64_t epoch = r.epoch;
  if (epoch <= keep_epoch_) return;
  train_->write({scalar_event("epoch_loss", r.loss, epoch),
                 scalar_event("epoch_accuracy", r.accuracy, epoch),
                 scalar_event("epoch_learning_rate", r.lr, epoch)});
  if (r.val_loss < 0) return;
  if (!validation_) validation_ = std::make_unique<EventFile>(dir_ + "/validation");
  validation_->write({scalar_event("epoch_loss", r.val_loss, epoch),
                      scalar_event("epoch_accuracy", r.val_accuracy, epoch)});
}

void TensorBoardWriter::write_test(double accuracy, double loss, int64_t epochs_done) {
  train_->write({scalar_event("test_accuracy", accuracy, epochs_done),
                 scalar_event("test_loss", loss, epochs_done)});
}

}  // namespace dpt
