// Shard writing with a seeded global shuffle and atomic rename; shard loading with validation.
#include "data/shards.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/files.h"
#include "core/philox.h"
#include "data/dataset_swap.h"
#include "data/hdf5_util.h"

namespace dpt {

std::string train_shard_name(const std::string& dataset, int64_t shard, int64_t num_shards) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-train-%05lld-of-%05lld.h5", (long long)shard,
                (long long)num_shards);
  return dataset + buf;
}

std::string test_file_name(const std::string& dataset) { return dataset + "-test.h5"; }

namespace {

void write_file(const RawDataset& raw, const RawSplit& split, const std::vector<int64_t>& idx,
                const std::string& path, const std::string& split_name, int64_t shard,
                int64_t num_shards, const std::string& prepare_id) {
  const int64_t n = int64_t(idx.size()), sb = raw.height * raw.width * raw.channels;
  std::vector<uint8_t> images(static_cast<size_t>(n * sb));
  std::vector<uint8_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(split.images.begin() + idx[size_t(i)] * sb, sb, images.begin() + i * sb);
    labels[size_t(i)] = split.labels[size_t(idx[size_t(i)])];
  }
  h5::Handle f = h5::create_file(path);
  h5::write_u8(f, "images",
               {hsize_t(n), hsize_t(raw.height), hsize_t(raw.width), hsize_t(raw.channels)},
               images.data(), 1024);
  h5::write_u8(f, "labels", {hsize_t(n)}, labels.data(), 65536);
  h5::set_attr(f, "dataset", raw.name);
  h5::set_attr(f, "split", split_name);
  h5::set_attr(f, "shard", shard);
  h5::set_attr(f, "num_shards", num_shards);
  h5::set_attr(f, "num_samples", n);
  h5::set_attr(f, "classes", raw.classes);
  h5::set_attr(f, "source_md5", raw.source_md5);
  h5::set_attr(f, "format_version", kShardFormatVersion);
  h5::set_attr(f, "prepare_id", prepare_id);
  std::string names;
  for (const auto& c : raw.class_names) names += (names.empty() ? "" : ",") + c;
  h5::set_attr(f, "class_names", names);
  DPT_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0,
            "cannot flush '" << path << "'" << write_failure_hint(path));
}

}  // namespace

std::vector<std::string> write_shards(const RawDataset& raw, const std::string& out_dir,
                                      int64_t num_shards, uint64_t seed) {
  DPT_CHECK(
      num_shards >= 1 && num_shards <= raw.train.n,
      "--shards must be between 1 and the number of training samples (" << raw.train.n << ")");
  const std::string fresh = make_staging_folder(out_dir);

  std::vector<int64_t> order(static_cast<size_t>(raw.train.n));
  std::iota(order.begin(), order.end(), 0);
  PhiloxStream rng(seed, 0, 0, uint32_t(RandomStream::kShuffle));
  for (int64_t i = raw.train.n - 1; i > 0; --i)
    std::swap(order[size_t(i)], order[rng.below(uint32_t(i + 1))]);

  char id[17];
  std::random_device random;
  std::snprintf(id, sizeof id, "%08x%08x", unsigned(random()), unsigned(random()));
  const std::string prepare_id = id;
  std::vector<std::string> names;
  try {
    for (int64_t s = 0; s < num_shards; ++s) {
      const int64_t lo = s * raw.train.n / num_shards, hi = (s + 1) * raw.train.n / num_shards;
      const std::vector<int64_t> idx(order.begin() + lo, order.begin() + hi);
      names.push_back(train_shard_name(raw.name, s, num_shards));
      write_file(raw, raw.train, idx, fresh + "/" + names.back(), "train", s, num_shards,
                 prepare_id);
    }
    std::vector<int64_t> test_idx(static_cast<size_t>(raw.test.n));
    std::iota(test_idx.begin(), test_idx.end(), 0);
    names.push_back(test_file_name(raw.name));
    write_file(raw, raw.test, test_idx, fresh + "/" + names.back(), "test", 0, 1, prepare_id);
    for (const auto& n : names) {  // durable before the swap
      const int fd = ::open((fresh + "/" + n).c_str(), O_RDONLY);
      if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
      }
    }
  } catch (...) {
    discard_staging(fresh);
    throw;
  }
  std::string note;
  try {
    note = install_dataset(fresh, out_dir, raw.name, prepare_id, names);  // Note [prepare swap]
  } catch (...) {
    discard_staging(fresh);
    throw;
  }
  if (!note.empty()) std::fprintf(stderr, "dptrain: prepare: %s\n", note.c_str());
  std::vector<std::string> written;
  for (const auto& n : names) written.push_back(out_dir + "/" + n);
  return written;
}

std::vector<std::string> find_train_shards(const std::string& dir, const std::string& dataset) {
  struct stat st;
  DPT_CHECK(::stat(dir.c_str(), &st) != 0 || S_ISDIR(st.st_mode),
            "data.dir '" << dir << "' is a file, not a folder: give the folder that holds the "
                         << dataset << " shards (dptrain prepare --out)");
  DIR* d = ::opendir(dir.c_str());
  DPT_CHECK(d, "data directory '" << dir << "' does not exist; run: dptrain prepare " << dataset
                                  << " --raw RAW_DIR --out " << dir << " --shards N");
  ::closedir(d);
  const std::string prefix = dataset + "-train-";
  // index -> name, grouped by the shard count in the name ("-of-NNNNN").
  std::map<long long, std::map<long long, std::string>> sets;
  for (const auto& f : list_directory(dir)) {
    long long index = -1, total = -1;
    char tail[8] = {0};
    if (f.rfind(prefix, 0) != 0 ||
        std::sscanf(f.c_str() + prefix.size(), "%5lld-of-%5lld%4s", &index, &total, tail) != 3 ||
        std::string(tail) != ".h5")
      continue;
    sets[total][index] = f;
  }
  DPT_CHECK(!sets.empty(), "no " << dataset << " train shards (" << prefix
                                 << "NNNNN-of-NNNNN.h5) in '" << dir << "'; run: dptrain prepare "
                                 << dataset << " --raw RAW_DIR --out " << dir << " --shards N");
  if (sets.size() > 1) {
    std::string counts;
    for (const auto& [total, files] : sets)
      counts += (counts.empty() ? "" : " and ") + std::to_string(files.size()) + " of " +
                std::to_string(total);
    DPT_FAIL("the train shards in '" << dir
                                     << "' are incomplete or mixed: they come from prepares with "
                                        "different shard counts ("
                                     << counts << "); re-run dptrain prepare");
  }
  const auto& [total, files] = *sets.begin();
  for (long long s = 0; s < total; ++s)
    DPT_CHECK(files.count(s), "train shard '" << dir << "/" << train_shard_name(dataset, s, total)
                                              << "' is missing (found " << files.size() << " of "
                                              << total
                                              << "); copy it again or re-run dptrain prepare");
  std::vector<std::string> names;
  for (const auto& [index, name] : files) names.push_back(dir + "/" + name);
  return names;
}

namespace {
// The attributes must agree with the data: a class count labels can hold, one class name per
// class. (The image shape is checked against the model's input where a model reads them.)
void check_class_attributes(const std::string& path, int64_t classes, hid_t f) {
  DPT_CHECK(classes >= 1 && classes <= 256,
            "'" << path << "' attribute classes is " << classes
                << ", outside 1..256 (labels are one byte): the file is corrupt or not "
                   "dptrain's; re-run dptrain prepare");
  if (h5::has_attr(f, "class_names")) {
    const std::string names = h5::get_attr_string(f, "class_names", path);
    const int64_t count = names.empty() ? 0 : 1 + std::count(names.begin(), names.end(), ',');
    DPT_CHECK(count == 0 || count == classes,
              "'" << path << "' lists " << count << " class names for " << classes
                  << " classes: the file is corrupt or mislabelled; re-run dptrain prepare");
  }
}
}  // namespace

std::string prepare_id_of(hid_t file, const std::string& path) {
  return h5::has_attr(file, "prepare_id") ? h5::get_attr_string(file, "prepare_id", path) : "";
}

ShardData load_shards(const std::vector<std::string>& files, const std::string& dataset,
                      int64_t max_samples) {
  ShardData out;
  out.dataset = dataset;
  for (const auto& path : files) {
    h5::Handle f = h5::open_file(path);
    const int64_t version = h5::get_attr_int(f, "format_version", path);
    if (version < 2) out.unchecked_files.push_back(path);
    if (version >= 2) h5::require_checksums(f, path, "re-run dptrain prepare");
    DPT_CHECK(version <= kShardFormatVersion,
              "'" << path << "' has shard format version " << version
                  << "; this dptrain reads up "
                     "to "
                  << kShardFormatVersion << ": upgrade dptrain or re-run prepare");
    const std::string id = prepare_id_of(f, path);
    if (path == files.front()) out.prepare_id = id;
    DPT_CHECK(id == out.prepare_id, "'" << path << "' has prepare_id '" << id << "' but '"
                                        << files.front() << "' has '" << out.prepare_id
                                        << "': they come from two different prepares; re-run "
                                           "dptrain prepare into an empty --out");
    const std::string ds = h5::get_attr_string(f, "dataset", path);
    DPT_CHECK(ds == dataset, "'" << path << "' holds dataset '" << ds
                                 << "' but the config asks "
                                    "for '"
                                 << dataset << "'");
    const auto dims = h5::dims_of(f, "images", path);
    DPT_CHECK(dims.size() == 4, "'" << path << "' dataset 'images' has " << dims.size()
                                    << " dimensions; expected 4 (N, H, W, C)");
    const auto ldims = h5::dims_of(f, "labels", path);
    DPT_CHECK(ldims.size() == 1 && ldims[0] == dims[0],
              "'" << path << "' dataset 'labels' has a shape that does not match 'images' ("
                  << dims[0] << " images)");
    const int64_t classes = h5::get_attr_int(f, "classes", path);
    check_class_attributes(path, classes, f);
    const int64_t n = int64_t(dims[0]);
    DPT_CHECK(n > 0, "'" << path
                         << "' holds no samples; re-run dptrain prepare (with fewer "
                            "--shards than samples) or remove it");
    DPT_CHECK(h5::get_attr_int(f, "num_samples", path) == n,
              "'" << path << "' attribute num_samples disagrees with the images dataset");
    if (out.height == 0) {
      out.height = int64_t(dims[1]);
      out.width = int64_t(dims[2]);
      out.channels = int64_t(dims[3]);
      out.classes = classes;
    }
    DPT_CHECK(
        int64_t(dims[1]) == out.height && int64_t(dims[2]) == out.width &&
            int64_t(dims[3]) == out.channels && classes == out.classes,
        "'" << path << "' has images of another shape or class count than '" << files[0] << "'");
    std::vector<uint8_t> images(static_cast<size_t>(n) * dims[1] * dims[2] * dims[3]),
        labels(static_cast<size_t>(n));
    h5::read_u8(f, "images", images.data(), path);
    h5::read_u8(f, "labels", labels.data(), path);
    for (int64_t i = 0; i < n; ++i)
      DPT_CHECK(labels[size_t(i)] < classes,
                "'" << path << "' dataset 'labels' sample " << i << " has label "
                    << int(labels[size_t(i)]) << ", outside 0.." << classes - 1
                    << "; the shard is corrupt: re-run dptrain prepare");
    const int64_t keep = max_samples > 0 ? std::min(n, max_samples) : n;
    out.images.insert(out.images.end(), images.begin(), images.begin() + keep * out.sample_bytes());
    out.labels.insert(out.labels.end(), labels.begin(), labels.begin() + keep);
    out.n += keep;
  }
  return out;
}

}  // namespace dpt
