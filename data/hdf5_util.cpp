// HDF5 helpers: every call checked, every failure naming the file and the object.
#include "data/hdf5_util.h"

#include <cstring>

namespace dpt::h5 {

#define H5_CHECK(expr, msg)                                                        \
  do {                                                                             \
    if ((expr) < 0) DPT_FAIL(msg << " [HDF5 call failed at " << __FILE__ << ":" << __LINE__ << "]"); \
  } while (0)

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = -1;
}

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle create_file(const std::string& path) {
  quiet();
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5_CHECK(f, "cannot create HDF5 file '" << path << "' (is the directory writable?)");
  return Handle(f, H5Fclose);
}

Handle open_file(const std::string& path) {
  quiet();
  FILE* probe = std::fopen(path.c_str(), "rb");
  DPT_CHECK(probe, "cannot open '" << path << "': no such file or no permission");
  std::fclose(probe);
  DPT_CHECK(H5Fis_hdf5(path.c_str()) > 0,
            "'" << path << "' is not a readable HDF5 file (truncated or corrupt?)");
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  H5_CHECK(f, "cannot open HDF5 file '" << path << "' (truncated or corrupt?)");
  return Handle(f, H5Fclose);
}

bool exists(hid_t loc, const std::string& path) {
  // Check each prefix: H5Lexists fails on a missing intermediate group.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (!prefix.empty() && prefix != "/" && H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0)
      return false;
    if (pos == std::string::npos) return true;
  }
}

Handle create_group(hid_t loc, const std::string& path) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  const hid_t g = H5Gcreate2(loc, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5_CHECK(g, "cannot create HDF5 group '" << path << "'");
  return Handle(g, H5Gclose);
}

namespace {
void write_raw(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
               hid_t type, const void* data, hsize_t chunk_rows) {
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (chunk_rows > 0 && !dims.empty() && dims[0] > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min(chunk_rows, dims[0]);
    H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 4);
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  Handle ds(H5Dcreate2(loc, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot create HDF5 dataset '" << name << "'");
  H5_CHECK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
           "cannot write HDF5 dataset '" << name << "' (disk full?)");
}

void read_raw(hid_t loc, const std::string& name, hid_t type, void* out, const std::string& file) {
  DPT_CHECK(exists(loc, name), "'" << file << "' has no dataset '" << name << "'");
  Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot open dataset '" << name << "' in '" << file << "'");
  H5_CHECK(H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out),
           "cannot read dataset '" << name << "' in '" << file << "' (truncated or corrupt?)");
}
}  // namespace

void write_u8(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
              const uint8_t* data, hsize_t chunk_rows) {
  write_raw(loc, name, dims, H5T_NATIVE_UINT8, data, chunk_rows);
}

void write_f32(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
               const float* data) {
  write_raw(loc, name, dims, H5T_NATIVE_FLOAT, data, 0);
}

std::vector<hsize_t> dims_of(hid_t loc, const std::string& name, const std::string& file) {
  DPT_CHECK(exists(loc, name), "'" << file << "' has no dataset '" << name << "'");
  Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot open dataset '" << name << "' in '" << file << "'");
  Handle space(H5Dget_space(ds), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  H5_CHECK(rank, "cannot read the shape of '" << name << "' in '" << file << "'");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

void read_u8(hid_t loc, const std::string& name, uint8_t* out, const std::string& file) {
  read_raw(loc, name, H5T_NATIVE_UINT8, out, file);
}

void read_f32(hid_t loc, const std::string& name, float* out, const std::string& file) {
  read_raw(loc, name, H5T_NATIVE_FLOAT, out, file);
}

void set_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, std::max<size_t>(value.size(), 1));
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5_CHECK(a.get(), "cannot create attribute '" << name << "'");
  H5_CHECK(H5Awrite(a, type, value.data()), "cannot write attribute '" << name << "'");
}

void set_attr(hid_t obj, const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  H5_CHECK(a.get(), "cannot create attribute '" << name << "'");
  H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, &value), "cannot write attribute '" << name << "'");
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string get_attr_string(hid_t obj, const std::string& name, const std::string& file) {
  DPT_CHECK(has_attr(obj, name), "'" << file << "' lacks attribute '" << name << "'");
  Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(a), H5Tclose);
  DPT_CHECK(H5Tget_class(type) == H5T_STRING,
            "attribute '" << name << "' in '" << file << "' is not a string");
  if (H5Tis_variable_str(type) > 0) {
    char* s = nullptr;
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem, H5T_VARIABLE);
    H5_CHECK(H5Aread(a, mem, &s), "cannot read attribute '" << name << "' in '" << file << "'");
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  std::string out(H5Tget_size(type), '\0');
  H5_CHECK(H5Aread(a, type, out.data()), "cannot read attribute '" << name << "' in '" << file << "'");
  out.resize(std::strlen(out.c_str()));
  return out;
}

int64_t get_attr_int(hid_t obj, const std::string& name, const std::string& file) {
  DPT_CHECK(has_attr(obj, name), "'" << file << "' lacks attribute '" << name << "'");
  Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  int64_t v = 0;
  H5_CHECK(H5Aread(a, H5T_NATIVE_INT64, &v),
           "attribute '" << name << "' in '" << file << "' is not an integer");
  return v;
}

}  // namespace dpt::h5
