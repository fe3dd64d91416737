// Thin RAII and checking helpers over the HDF5 C API, used by shard and checkpoint files.
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

#include "models/core/error.h"

namespace dpt::h5 {

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

Handle create_file(const std::string& path);  // truncates
Handle open_file(const std::string& path);    // read-only, with a clear error if not HDF5
bool exists(hid_t loc, const std::string& path);
Handle create_group(hid_t loc, const std::string& path);  // creates parents too

// Datasets of uint8 / float32 / int64 with arbitrary dims; chunked and compressed if chunk_rows > 0.
void write_u8(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
              const uint8_t* data, hsize_t chunk_rows);
void write_f32(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
               const float* data);
std::vector<hsize_t> dims_of(hid_t loc, const std::string& name, const std::string& file);
void read_u8(hid_t loc, const std::string& name, uint8_t* out, const std::string& file);
void read_f32(hid_t loc, const std::string& name, float* out, const std::string& file);

void set_attr(hid_t obj, const std::string& name, const std::string& value);
void set_attr(hid_t obj, const std::string& name, int64_t value);
bool has_attr(hid_t obj, const std::string& name);
std::string get_attr_string(hid_t obj, const std::string& name, const std::string& file);
int64_t get_attr_int(hid_t obj, const std::string& name, const std::string& file);

}  // namespace dpt::h5
