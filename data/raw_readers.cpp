// IDX and CIFAR-10 binary readers with header, size, label-range and checksum verification.
#include "data/raw_readers.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <zlib.h>

#include <map>

#include "core/error.h"
#include "data/checksums.h"
#include "data/md5.h"

namespace dpt {

namespace {

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

void verify_md5(const std::string& dataset, const std::string& file,
                const std::vector<uint8_t>& bytes, bool verify, std::string& record) {
  const std::string got = md5_hex(bytes);
  record += (record.empty() ? "" : ";") + file + "=" + got;
  const std::string want = known_md5(dataset, file);
  if (!verify || want.empty()) return;
  DPT_CHECK(got == want,
            "checksum mismatch for "
                << dataset << " file '" << file
                << "': md5 of "
                   "its decompressed content is "
                << got << ", expected " << want
                << ". The file is damaged or not the official one: fetch it again "
                   "(scripts/fetch-data.sh), or pass --no-verify if you trust this copy");
}

// The official name, with or without .gz.
std::string find_raw(const std::string& dir, const std::string& base) {
  for (const std::string& cand : {dir + "/" + base + ".gz", dir + "/" + base})
    if (file_exists(cand)) return cand;
  DPT_FAIL("raw file '" << base << "(.gz)' not found in '" << dir
                        << "'; run scripts/fetch-data.sh or point --raw at the folder holding it");
}

RawDataset read_idx_dataset(const std::string& name, const std::string& dir, bool verify) {
  RawDataset d;
  d.name = name;
  d.height = d.width = 28;
  d.channels = 1;
  d.classes = 10;
  for (auto [split, prefix] : {std::pair{&d.train, "train"}, {&d.test, "t10k"}}) {
    const std::string img_name = std::string(prefix) + "-images-idx3-ubyte";
    const std::string lab_name = std::string(prefix) + "-labels-idx1-ubyte";
    const auto images = read_maybe_gzip(find_raw(dir, img_name));
    const auto labels = read_maybe_gzip(find_raw(dir, lab_name));
    verify_md5(name, img_name, images, verify, d.source_md5);
    verify_md5(name, lab_name, labels, verify, d.source_md5);
    *split = parse_idx_pair(images, labels, img_name, lab_name, d.classes);
  }
  d.class_names =
      name == "mnist"
          ? std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
          : std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return d;
}

// CIFAR-10 binary: records of 1 label byte + 3072 bytes (1024 R, 1024 G, 1024 B planes).
constexpr int64_t kCifarRecord = 3073, kCifarPerBatch = 10000;

void append_cifar(RawSplit& split, const std::vector<uint8_t>& bytes, const std::string& file) {
  DPT_CHECK(
      bytes.size() == size_t(kCifarRecord * kCifarPerBatch),
      "CIFAR-10 file '" << file << "' has " << bytes.size() << " bytes, expected "
                        << kCifarRecord * kCifarPerBatch
                        << " (10000 records of 3073 bytes): truncated or not CIFAR-10 binary");
  const size_t base = split.images.size();
  split.images.resize(base + size_t(kCifarPerBatch) * 3072);
  for (int64_t r = 0; r < kCifarPerBatch; ++r) {
    const uint8_t* rec = bytes.data() + r * kCifarRecord;
    DPT_CHECK(rec[0] < 10, "CIFAR-10 file '" << file << "' record " << r << " has label "
                                             << int(rec[0]) << ", outside 0..9: corrupt file");
    split.labels.push_back(rec[0]);
    uint8_t* out = split.images.data() + base + size_t(r) * 3072;
    for (int p = 0; p < 1024; ++p)
      for (int c = 0; c < 3; ++c) out[p * 3 + c] = rec[1 + c * 1024 + p];
  }
  split.n += kCifarPerBatch;
}

std::map<std::string, std::vector<uint8_t>> read_cifar_files(const std::string& dir) {
  std::map<std::string, std::vector<uint8_t>> files;
  const std::string folder = dir + "/cifar-10-batches-bin";
  const std::string tarball = dir + "/cifar-10-binary.tar.gz";
  if (file_exists(folder + "/test_batch.bin")) {
    for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
      files[f] = read_maybe_gzip(find_raw(folder, f));
    return files;
  }
  DPT_CHECK(file_exists(tarball),
            "neither '" << folder << "/' nor '" << tarball
                        << "' exists; run scripts/fetch-data.sh cifar10 or point --raw "
                           "at the folder holding the CIFAR-10 binary version");
  archive* a = archive_read_new();
  // The CIFAR-10 binary version is a gzipped tar: only those two (libarchive is linked
  // statically, and its other formats would bring libxml2 and ICU along).
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, tarball.c_str(), 1 << 20) != ARCHIVE_OK) {
    const std::string err = archive_error_string(a) ? archive_error_string(a) : "?";
    archive_read_free(a);
    DPT_FAIL("cannot open '" << tarball << "': " << err);
  }
  archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    std::string path = archive_entry_pathname(e);
    const std::string base = path.substr(path.find_last_of('/') + 1);
    if (base.size() < 5 || base.substr(base.size() - 4) != ".bin") continue;
    std::vector<uint8_t> buf(static_cast<size_t>(archive_entry_size(e)));
    const la_ssize_t got = archive_read_data(a, buf.data(), buf.size());
    if (got != la_ssize_t(buf.size())) {
      archive_read_free(a);
      DPT_FAIL("'" << tarball << "' is truncated or corrupt inside '" << path << "'");
    }
    files[base] = std::move(buf);
  }
  const bool clean_end = rc == ARCHIVE_EOF;
  const std::string err = archive_error_string(a) ? archive_error_string(a) : "";
  archive_read_free(a);
  DPT_CHECK(clean_end, "'" << tarball << "' is truncated or corrupt: " << err);
  return files;
}

RawDataset read_cifar10(const std::string& dir, bool verify) {
  RawDataset d;
  d.name = "cifar10";
  d.height = d.width = 32;
  d.channels = 3;
  d.classes = 10;
  d.class_names = {"airplane", "automobile", "bird",  "cat",  "deer",
                   "dog",      "frog",       "horse", "ship", "truck"};
  auto files = read_cifar_files(dir);
  for (int b = 1; b <= 6; ++b) {
    const std::string f = b <= 5 ? "data_batch_" + std::to_string(b) + ".bin" : "test_batch.bin";
    DPT_CHECK(files.count(f), "CIFAR-10 file '" << f << "' is missing under '" << dir << "'");
    verify_md5("cifar10", f, files[f], verify, d.source_md5);
    append_cifar(b <= 5 ? d.train : d.test, files[f], f);
  }
  return d;
}

}  // namespace

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  DPT_CHECK(f, "cannot open '" << path << "'");
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  int n;
  while ((n = gzread(f, buf.data(), unsigned(buf.size()))) > 0)
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  int errnum = 0;
  const char* msg = gzerror(f, &errnum);
  const std::string err = msg ? msg : "";
  gzclose(f);
  DPT_CHECK(n == 0 && errnum == Z_OK,
            "'" << path << "' is truncated or not a valid gzip file (" << err << ")");
  return out;
}

RawSplit parse_idx_pair(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels,
                        const std::string& images_name, const std::string& labels_name,
                        int64_t classes) {
  DPT_CHECK(images.size() >= 16 && be32(images.data()) == 0x00000803,
            "'" << images_name
                << "' does not start with the IDX magic 0x00000803 of a uint8 "
                   "3-D array: not an IDX image file");
  DPT_CHECK(labels.size() >= 8 && be32(labels.data()) == 0x00000801,
            "'" << labels_name
                << "' does not start with the IDX magic 0x00000801 of a uint8 "
                   "1-D array: not an IDX label file");
  const int64_t n = be32(images.data() + 4), h = be32(images.data() + 8),
                w = be32(images.data() + 12);
  const int64_t nl = be32(labels.data() + 4);
  DPT_CHECK(h == 28 && w == 28, "'" << images_name << "' holds " << h << "x" << w
                                    << " images; MNIST-style data is 28x28");
  DPT_CHECK(int64_t(images.size()) == 16 + n * h * w,
            "'" << images_name << "' has " << images.size() - 16 << " pixel bytes, header says "
                << n * h * w << " (" << n << " images): the file is truncated");
  DPT_CHECK(int64_t(labels.size()) == 8 + nl, "'" << labels_name << "' has " << labels.size() - 8
                                                  << " labels, header says " << nl
                                                  << ": the file is truncated");
  DPT_CHECK(n == nl, "'" << images_name << "' has " << n << " images but '" << labels_name
                         << "' has " << nl << " labels");
  RawSplit s;
  s.n = n;
  s.images.assign(images.begin() + 16, images.end());
  s.labels.assign(labels.begin() + 8, labels.end());
  for (int64_t i = 0; i < n; ++i)
    DPT_CHECK(s.labels[size_t(i)] < classes, "'" << labels_name << "' label " << i << " is "
                                                 << int(s.labels[size_t(i)]) << ", outside 0.."
                                                 << classes - 1 << ": corrupt file");
  return s;
}

RawDataset read_raw_dataset(const std::string& name, const std::string& dir, bool verify) {
  if (name == "mnist" || name == "fashion-mnist") return read_idx_dataset(name, dir, verify);
  if (name == "cifar10") return read_cifar10(dir, verify);
  DPT_FAIL("unknown dataset '" << name << "'; expected mnist, fashion-mnist or cifar10");
}

}  // namespace dpt
