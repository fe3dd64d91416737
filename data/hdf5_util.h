// Thin RAII and checking helpers over the HDF5 C API, used by shard and checkpoint files.
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace dpt::h5 {

// Note [checksums]: every dataset dptrain writes is chunked and carries HDF5's Fletcher32
// filter (applied after compression, so it covers the stored bytes), and every file is written
// in the HDF5 1.10 format, whose metadata (superblock, object headers holding the attributes,
// chunk indexes) carries Jenkins checksums. HDF5 verifies both on every read, h5py and h5dump
// included; a mismatch becomes an error naming the file and the object ("checksum mismatch in
// /model/conv2d/kernel of FILE: the file is corrupt"). Files of format version 1 (before
// checksums) still read. docs/CHECKPOINTS.md has the measured cost.

// Closes an hid_t with the right H5*close on scope exit.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset();
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Silences HDF5's own stderr dump; dptrain reports errors itself, naming file and dataset.
void quiet();

Handle create_file(
    const std::string& path);               // a new file (O_EXCL); 1.10 format (metadata checksums)
Handle open_file(const std::string& path);  // read-only, with a clear error if not HDF5
Handle open_group(hid_t loc, const std::string& path, const std::string& file);
bool exists(hid_t loc, const std::string& path);
Handle create_group(hid_t loc, const std::string& path);  // creates parents too

// Reads check the stored type against the format's exactly (HDF5 would convert silently).
// Datasets of uint8 / float32 with arbitrary dims, always chunked with Fletcher32. chunk_rows
// > 0 sets a chunk's first dimension and adds deflate (shards); 0 stores about 4 MiB per
// chunk, uncompressed.
void write_u8(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
              const uint8_t* data, hsize_t chunk_rows);
void write_f32(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
               const float* data);
// Dims of a dataset; a size beyond kMaxDatasetBytes is refused before anyone allocates it.
std::vector<hsize_t> dims_of(hid_t loc, const std::string& name, const std::string& file);
constexpr uint64_t kMaxDatasetBytes = uint64_t{16} << 30;
void check_size(const std::vector<hsize_t>& dims, size_t element_bytes, const std::string& name,
                const std::string& file);
// Every non-empty dataset of a file that claims checksums must carry the Fletcher32 filter
// (h5repack -f NONE or h5py drop it silently); otherwise an error naming it, then fix.
void require_checksums(hid_t file, const std::string& path, const std::string& fix);
void read_u8(hid_t loc, const std::string& name, uint8_t* out, const std::string& file);
void read_f32(hid_t loc, const std::string& name, float* out, const std::string& file);

void set_attr(hid_t obj, const std::string& name, const std::string& value);
void set_attr(hid_t obj, const std::string& name, int64_t value);
bool has_attr(hid_t obj, const std::string& name);
// Fixed- or variable-length strings (h5py writes the latter), ASCII or UTF-8.
std::string get_attr_string(hid_t obj, const std::string& name, const std::string& file);
int64_t get_attr_int(hid_t obj, const std::string& name, const std::string& file);

// Reads every dataset and attribute of the file once, so that HDF5 checks every checksum;
// throws on the first bad object, naming it. Returns the number of datasets read.
int64_t verify_all(hid_t file, const std::string& path);

// For benchmarks only: write without the Fletcher32 filter (to measure what it costs).
void set_checksums_for_benchmark(bool on);

}  // namespace dpt::h5
