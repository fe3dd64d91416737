// TensorBoard event files: TFRecord framing with masked CRC32C, Event/Summary protobufs, resume.
#include "trainer/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "trainer/protobuf_wire.h"

namespace dpt {

namespace {

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

// Event{wall_time = 1, step = 2, file_version = 3, summary = 5}; Summary{value = 1};
// Summary.Value{tag = 1, simple_value = 2, tensor = 8, metadata = 9} (tensorflow/core/util/
// event.proto and framework/summary.proto).
std::string event(int64_t step, const ProtoWriter& value) {
  ProtoWriter summary, e;
  summary.message(1, value);
  e.fixed64(1, wall_time());
  e.int64(2, step);
  e.message(5, summary);
  return e.bytes();
}

std::string scalar_event(const std::string& tag, double v, int64_t step) {
  ProtoWriter value;
  value.bytes(1, tag);
  value.fixed32(2, float(v));
  return event(step, value);
}

// The text plugin's summary: a scalar DT_STRING tensor (TensorProto{dtype = 1: DT_STRING = 7,
// tensor_shape = 2: scalar, string_val = 8}), SummaryMetadata{plugin_data = 1: {plugin_name = 1:
// "text", content = 2: TextPluginData{version 0}, i.e. empty}}.
std::string text_event(const std::string& tag, const std::string& text, int64_t step) {
  ProtoWriter tensor, shape, plugin, metadata, value;
  tensor.int64(1, 7);
  tensor.message(2, shape);
  tensor.bytes(8, text);
  plugin.bytes(1, "text");
  metadata.message(1, plugin);
  value.bytes(1, tag);
  value.message(8, tensor);
  value.message(9, metadata);
  return event(step, value);
}

// Reads back what event() wrote: a varint/length-delimited field walk, enough for the step
// and the tag of an Event's one value.
struct Field {
  int number = 0, type = 0;
  uint64_t value = 0;
  std::string bytes;
};

bool next_field(const std::string& s, size_t& pos, Field& f) {
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; pos < s.size() && shift < 64; shift += 7) {
      const auto b = uint8_t(s[pos++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  uint64_t key = 0;
  if (pos >= s.size() || !varint(key)) return false;
  f.number = int(key >> 3);
  f.type = int(key & 7);
  if (f.type == 0) return varint(f.value);
  const size_t n = f.type == 1 ? 8 : f.type == 5 ? 4 : 0;
  if (f.type == 2 && !varint(f.value)) return false;
  const size_t len = f.type == 2 ? size_t(f.value) : n;
  if ((f.type != 1 && f.type != 2 && f.type != 5) || len > s.size() - pos) return false;
  f.bytes = s.substr(pos, len);
  pos += len;
  return true;
}

// (step, tag) of an Event; tag "" for events without a summary (the file_version event).
std::pair<int64_t, std::string> step_and_tag(const std::string& ev) {
  int64_t step = 0;
  std::string tag;
  Field f;
  for (size_t pos = 0; next_field(ev, pos, f);) {
    if (f.number == 2 && f.type == 0) step = int64_t(f.value);
    if (f.number != 5 || f.type != 2) continue;
    Field v, t;
    for (size_t p = 0; next_field(f.bytes, p, v);)
      if (v.number == 1 && v.type == 2)
        for (size_t q = 0; next_field(v.bytes, q, t);)
          if (t.number == 1 && t.type == 2) tag = t.bytes;
  }
  return {step, tag};
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
    make_directories(dir);
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    path_ = dir + "/events.out.tfevents." + std::to_string(int64_t(wall_time())) + "." + host +
            "." + std::to_string(::getpid());
    // Never truncate an earlier file (a reused PID within the same second).
    for (int k = 1; ::access(path_.c_str(), F_OK) == 0; ++k) path_ += "." + std::to_string(k);
    out_.open(path_, std::ios::binary | std::ios::trunc);
    DPT_CHECK(out_, "cannot create the TensorBoard event file '" << path_ << "'"
                                                                 << write_failure_hint(path_));
    ProtoWriter e;
    e.fixed64(1, wall_time());
    e.bytes(3, "brain.Event:2");
    write({e.bytes()});
  }
  void write(const std::vector<std::string>& events) {
    std::string bytes;
    for (const auto& e : events) bytes += record(e);
    out_.write(bytes.data(), std::streamsize(bytes.size()));
    out_.flush();  // TensorBoard shows it now, and a crash loses nothing written
    DPT_CHECK(out_, "cannot append to the TensorBoard event file '"
                        << path_ << "'" << write_failure_hint(path_)
                        << "; or set train.tensorboard: false");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t keep_through_step,
                                     int64_t keep_through_epoch, const std::string& config_yaml)
    : dir_(dir), keep_step_(keep_through_step), keep_epoch_(keep_through_epoch) {
  for (const char* run : {"/train", "/validation"}) {
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
  const int64_t epoch = std::stoll(r.epoch);
  if (epoch <= keep_epoch_) return;
  train_->write({scalar_event("epoch_loss", r.loss, epoch),
                 scalar_event("epoch_accuracy", r.accuracy, epoch),
                 scalar_event("epoch_learning_rate", r.lr, epoch)});
  if (r.val_loss < 0) return;
  if (!validation_) validation_ = std::make_unique<EventFile>(dir_ + "/validation");
  validation_->write({scalar_event("epoch_loss", r.val_loss, epoch),
                      scalar_event("epoch_accuracy", r.val_accuracy, epoch)});
}

void TensorBoardWriter::write_test(const EvalResult& test, int64_t epochs_done) {
  train_->write({scalar_event("test_accuracy", test.accuracy, epochs_done),
                 scalar_event("test_loss", test.loss, epochs_done)});
}

}  // namespace dpt
