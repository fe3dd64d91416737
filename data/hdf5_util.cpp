// HDF5 helpers: every call checked, every failure naming the file and the object, checksums on.
#include "data/hdf5_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/files.h"
#include "core/safe_files.h"

namespace dpt::h5 {

namespace {

bool g_checksums = true;

herr_t collect_error(unsigned, const H5E_error2_t* e, void* out) {
  auto* s = static_cast<std::vector<std::string>*>(out);
  if (e->desc && *e->desc) s->push_back(e->desc);
  return 0;
}

// HDF5's error stack of the call that just failed, outermost first: it says whether a
// checksum did not match, and its last entry is the most specific cause.
std::vector<std::string> error_stack() {
  std::vector<std::string> s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &s);
  return s;
}

std::string file_of(hid_t loc) {
  const ssize_t n = H5Fget_name(loc, nullptr, 0);
  if (n <= 0) return "the HDF5 file";
  std::string name(size_t(n) + 1, '\0');
  H5Fget_name(loc, name.data(), name.size());
  name.resize(size_t(n));
  return name;
}

// A failed HDF5 call: a checksum mismatch is named as corruption; anything else keeps msg.
[[noreturn]] void fail_call(const std::vector<std::string>& stack, const std::string& msg,
                            const std::string& object, const std::string& file, const char* src,
                            int line) {
  for (const auto& e : stack)
    if (e.find("checksum") != std::string::npos || e.find("Fletcher32") != std::string::npos)
      DPT_FAIL("checksum mismatch in " << object << " of " << file
                                       << ": the file is corrupt; "
                                          "use another copy (or an earlier checkpoint)");
  DPT_FAIL(msg << " [HDF5 call failed at " << src << ":" << line
               << (stack.empty() ? "" : ": " + stack.back()) << "]");
}

}  // namespace

// The error stack is read first: any HDF5 call (naming the file, say) would clear it.
#define H5_CHECK(expr, msg, object, file)                                           \
  do {                                                                              \
    if ((expr) < 0) {                                                               \
      const std::vector<std::string> dpt_h5_stack_ = error_stack();                 \
      std::ostringstream dpt_h5_os_;                                                \
      dpt_h5_os_ << msg;                                                            \
      fail_call(dpt_h5_stack_, dpt_h5_os_.str(), object, file, __FILE__, __LINE__); \
    }                                                                               \
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

void set_checksums_for_benchmark(bool on) { g_checksums = on; }

Handle create_file(const std::string& path) {
  quiet();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);  // Note [checksums]
  // Exclusively (O_EXCL): never over an existing file, never through a link (Note [file
  // safety] in core/safe_files.h); callers write to a fresh name and rename it into place.
  refuse_link(path, "the HDF5 file");
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl);
  H5_CHECK(f, "cannot create HDF5 file '" << path << "'" << write_failure_hint(path),
           "the superblock", path);
  return Handle(f, H5Fclose);
}

Handle open_file(const std::string& path) {
  quiet();
  struct stat st;  // a FIFO would block open() forever, a folder is no file at all
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    require_regular_file(path, "the HDF5 file");
  FILE* probe = std::fopen(path.c_str(), "rb");
  DPT_CHECK(probe, "cannot open '" << path << "': no such file or no permission");
  std::fclose(probe);
  DPT_CHECK(H5Fis_hdf5(path.c_str()) > 0,
            "'" << path << "' is not a readable HDF5 file (truncated or corrupt?)");
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  H5_CHECK(f, "cannot open HDF5 file '" << path << "' (truncated or corrupt?)", "the superblock",
           path);
  return Handle(f, H5Fclose);
}

Handle open_group(hid_t loc, const std::string& path, const std::string& file) {
  DPT_CHECK(exists(loc, path), "'" << file << "' has no group '" << path << "'");
  const hid_t g = H5Gopen2(loc, path.c_str(), H5P_DEFAULT);
  H5_CHECK(g, "cannot open group '" << path << "' in '" << file << "'", path, file);
  return Handle(g, H5Gclose);
}

bool exists(hid_t loc, const std::string& path) {
  // Check each prefix: H5Lexists fails on a missing intermediate group.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (!prefix.empty() && prefix != "/") {
      const htri_t e = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
      H5_CHECK(e, "cannot look up '" << prefix << "' in '" << file_of(loc) << "'", prefix,
               file_of(loc));
      if (e == 0) return false;
    }
    if (pos == std::string::npos) return true;
  }
}

Handle create_group(hid_t loc, const std::string& path) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_obj_track_times(gcpl, 0);  // identical runs write identical files
  const hid_t g = H5Gcreate2(loc, path.c_str(), lcpl, gcpl, H5P_DEFAULT);
  H5_CHECK(g, "cannot create HDF5 group '" << path << "'", path, file_of(loc));
  return Handle(g, H5Gclose);
}

namespace {
void write_raw(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims, hid_t type,
               const void* data, hsize_t chunk_rows) {
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(dcpl, 0);
  hsize_t total = 1;
  for (auto d : dims) total *= d;
  if (!dims.empty() && total > 0) {
    // Chunking is what lets HDF5 filter (and checksum) a dataset.
    const hsize_t row = total / dims[0] * H5Tget_size(type);
    const bool compress = chunk_rows > 0;
    if (chunk_rows == 0)
      chunk_rows = std::max<hsize_t>(1, (hsize_t{4} << 20) / std::max<hsize_t>(row, 1));
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min(chunk_rows, dims[0]);
    H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
    if (compress && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 4);
    if (g_checksums) H5Pset_fletcher32(dcpl);  // last: it covers the stored (compressed) bytes
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  const std::string file = file_of(loc);
  Handle ds(H5Dcreate2(loc, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose);
  H5_CHECK(
      ds.get(),
      "cannot create HDF5 dataset '" << name << "' in '" << file << "'" << write_failure_hint(file),
      name, file);
  if (total == 0) return;  // nothing to write (and HDF5 refuses a null buffer)
  H5_CHECK(
      H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
      "cannot write HDF5 dataset '" << name << "' in '" << file << "'" << write_failure_hint(file),
      name, file);
}

std::string type_name(hid_t t) {
  const size_t bytes = H5Tget_size(t);
  switch (H5Tget_class(t)) {
    case H5T_INTEGER:
      return std::string(H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int") +
             std::to_string(8 * bytes);
    case H5T_FLOAT:
      return "float" + std::to_string(8 * bytes);
    case H5T_STRING:
      return "string";
    default:
      return "a compound or other non-numeric type";
  }
}

// HDF5 converts between numeric types silently (float labels, int16 -1 to uint8 255): the
// stored type must be exactly the format's.
void check_stored_type(hid_t ds, hid_t want, const std::string& name, const std::string& file) {
  Handle stored(H5Dget_type(ds), H5Tclose);
  const bool same = H5Tget_class(stored) == H5Tget_class(want) &&
                    H5Tget_size(stored) == H5Tget_size(want) &&
                    (H5Tget_class(want) != H5T_INTEGER || H5Tget_sign(stored) == H5Tget_sign(want));
  DPT_CHECK(same, "dataset '" << name << "' in '" << file << "' holds " << type_name(stored)
                              << " values, but dptrain's format stores " << type_name(want)
                              << " there: the file was not written by dptrain (or was "
                                 "rewritten); re-create it with dptrain");
}

void read_raw(hid_t loc, const std::string& name, hid_t type, void* out, const std::string& file) {
  DPT_CHECK(exists(loc, name), "'" << file << "' has no dataset '" << name << "'");
  Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot open dataset '" << name << "' in '" << file << "'", name, file);
  check_stored_type(ds, type, name, file);
  H5_CHECK(H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out),
           "cannot read dataset '" << name << "' in '" << file << "' (truncated or corrupt?)", name,
           file);
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
  H5_CHECK(ds.get(), "cannot open dataset '" << name << "' in '" << file << "'", name, file);
  Handle space(H5Dget_space(ds), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  H5_CHECK(rank, "cannot read the shape of '" << name << "' in '" << file << "'", name, file);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Handle type(H5Dget_type(ds), H5Tclose);
  check_size(dims, H5Tget_size(type), name, file);
  return dims;
}

void check_size(const std::vector<hsize_t>& dims, size_t element_bytes, const std::string& name,
                const std::string& file) {
  uint64_t bytes = element_bytes;
  bool overflow = false;
  for (hsize_t d : dims) overflow = overflow || __builtin_mul_overflow(bytes, uint64_t(d), &bytes);
  // Readers may hold a dataset twice (verify reads it, then checks it is finite): a quarter of
  // the memory, and never more than dptrain's files hold.
  const uint64_t memory = uint64_t(::sysconf(_SC_PHYS_PAGES)) * uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t limit =
      std::min<uint64_t>(kMaxDatasetBytes, std::max<uint64_t>(memory / 4, 1 << 30));
  DPT_CHECK(!overflow && bytes <= limit,
            "dataset '" << name << "' in '" << file << "' claims "
                        << (overflow ? std::string("more than 2^64") : std::to_string(bytes))
                        << " bytes, more than dptrain reads (at most " << (limit >> 20)
                        << " MiB here): the file is corrupt or not dptrain's; it was not read");
}

void require_checksums(hid_t file, const std::string& path, const std::string& fix) {
  if (!g_checksums) return;  // bench/checksum_cost.cpp reads what it wrote without them
  struct Walk {
    std::string missing;
  } walk;
  auto visit = [](hid_t root, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    if (info->type != H5O_TYPE_DATASET) return 0;
    Handle ds(H5Dopen2(root, name, H5P_DEFAULT), H5Dclose);
    if (ds.get() < 0) return 0;  // reading it names the fault
    Handle space(H5Dget_space(ds), H5Sclose);
    if (H5Sget_simple_extent_npoints(space) == 0) return 0;  // nothing stored, nothing to check
    Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
    unsigned flags = 0;
    size_t nelmts = 0;
    const bool has = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nelmts, nullptr, 0,
                                          nullptr, nullptr) >= 0;
    if (has) return 0;
    static_cast<Walk*>(data)->missing = std::string("/") + name;
    return 1;  // stop at the first
  };
  const herr_t rc = H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit, &walk, H5O_INFO_BASIC);
  H5_CHECK(rc, "cannot walk the objects of '" << path << "' (truncated or corrupt?)",
           "the object headers", path);
  DPT_CHECK(walk.missing.empty(),
            "'" << path << "' claims a format with checksums, but dataset '" << walk.missing
                << "' carries no Fletcher32 checksum (rewritten by h5repack or h5py?), so "
                   "corruption in it could not be detected; "
                << fix);
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
  const std::string file = file_of(obj);
  Handle a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5_CHECK(a.get(), "cannot create attribute '" << name << "'" << write_failure_hint(file),
           "attribute " + name, file);
  H5_CHECK(H5Awrite(a, type, value.data()), "cannot write attribute '" << name << "'",
           "attribute " + name, file);
}

void set_attr(hid_t obj, const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  const std::string file = file_of(obj);
  Handle a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5_CHECK(a.get(), "cannot create attribute '" << name << "'" << write_failure_hint(file),
           "attribute " + name, file);
  H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, &value), "cannot write attribute '" << name << "'",
           "attribute " + name, file);
}

bool has_attr(hid_t obj, const std::string& name) {
  const htri_t e = H5Aexists(obj, name.c_str());
  H5_CHECK(e, "cannot look up attribute '" << name << "' in '" << file_of(obj) << "'",
           "attribute " + name, file_of(obj));
  return e > 0;
}

std::string get_attr_string(hid_t obj, const std::string& name, const std::string& file) {
  DPT_CHECK(has_attr(obj, name), "'" << file << "' lacks attribute '" << name << "'");
  Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  H5_CHECK(a.get(), "cannot open attribute '" << name << "' in '" << file << "'",
           "attribute " + name, file);
  Handle type(H5Aget_type(a), H5Tclose);
  DPT_CHECK(H5Tget_class(type) == H5T_STRING,
            "attribute '" << name << "' in '" << file << "' is not a string");
  // The memory type takes the file's character set: HDF5 does not convert ASCII <-> UTF-8.
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem, H5Tget_cset(type));
  if (H5Tis_variable_str(type) > 0) {
    char* s = nullptr;
    H5Tset_size(mem, H5T_VARIABLE);
    H5_CHECK(H5Aread(a, mem, &s), "cannot read attribute '" << name << "' in '" << file << "'",
             "attribute " + name, file);
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  const size_t size = H5Tget_size(type);
  H5Tset_size(mem, size);
  H5Tset_strpad(mem, H5Tget_strpad(type));
  std::string out(size, '\0');
  H5_CHECK(H5Aread(a, mem, out.data()),
           "cannot read attribute '" << name << "' in '" << file << "'", "attribute " + name, file);
  out.resize(std::strlen(out.c_str()));
  // Space-padded strings (Fortran style) end in blanks that are not part of the value.
  while (!out.empty() && H5Tget_strpad(type) == H5T_STR_SPACEPAD && out.back() == ' ')
    out.pop_back();
  return out;
}

int64_t get_attr_int(hid_t obj, const std::string& name, const std::string& file) {
  DPT_CHECK(has_attr(obj, name), "'" << file << "' lacks attribute '" << name << "'");
  Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  H5_CHECK(a.get(), "cannot open attribute '" << name << "' in '" << file << "'",
           "attribute " + name, file);
  Handle type(H5Aget_type(a), H5Tclose);
  DPT_CHECK(H5Tget_class(type) == H5T_INTEGER,
            "attribute '" << name << "' in '" << file << "' is not an integer");
  int64_t v = 0;
  H5_CHECK(H5Aread(a, H5T_NATIVE_INT64, &v),
           "attribute '" << name << "' in '" << file << "' is not an integer", "attribute " + name,
           file);
  return v;
}

namespace {

struct VerifyState {
  std::string file;
  int64_t datasets = 0;
  std::string error;
};

// Reads every attribute of an object (they live in its checksummed header or heap).
herr_t read_attribute(hid_t obj, const char* name, const H5A_info_t*, void*) {
  Handle a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (a.get() < 0) return -1;
  Handle type(H5Aget_type(a), H5Tclose);
  Handle space(H5Aget_space(a), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (type.get() < 0 || n < 0) return -1;
  if (H5Tis_variable_str(type) > 0) {
    std::vector<char*> s(size_t(std::max<hssize_t>(n, 1)), nullptr);
    if (H5Aread(a, type, s.data()) < 0) return -1;
    H5Dvlen_reclaim(type, space, H5P_DEFAULT, s.data());
    return 0;
  }
  std::vector<unsigned char> buf(size_t(std::max<hssize_t>(n, 1)) * H5Tget_size(type));
  return H5Aread(a, type, buf.data()) < 0 ? -1 : 0;
}

herr_t visit_object(hid_t root, const char* name, const H5O_info_t* info, void* data) {
  auto* st = static_cast<VerifyState*>(data);
  const std::string path = std::string(name) == "." ? "/" : "/" + std::string(name);
  try {
    Handle obj(H5Oopen(root, name, H5P_DEFAULT), H5Oclose);
    H5_CHECK(obj.get(), "cannot open object '" << path << "' in '" << st->file << "'", path,
             st->file);
    H5_CHECK(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, read_attribute, st),
             "cannot read the attributes of '" << path << "' in '" << st->file << "'",
             "the attributes of " + path, st->file);
    if (info->type != H5O_TYPE_DATASET) return 0;
    Handle type(H5Dget_type(obj), H5Tclose);
    Handle space(H5Dget_space(obj), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    H5_CHECK(n, "cannot read the shape of '" << path << "' in '" << st->file << "'", path,
             st->file);
    if (H5Tis_variable_str(type) > 0 || H5Tget_class(type) == H5T_VLEN) {
      ++st->datasets;  // dptrain writes none; variable-length data is left to HDF5's own checks
      return 0;
    }
    Handle dspace(H5Dget_space(obj), H5Sclose);
    std::vector<hsize_t> dims(size_t(std::max(H5Sget_simple_extent_ndims(dspace), 0)));
    H5Sget_simple_extent_dims(dspace, dims.data(), nullptr);
    check_size(dims, H5Tget_size(type), path, st->file);  // before allocating it
    std::vector<unsigned char> buf(size_t(std::max<hssize_t>(n, 1)) * H5Tget_size(type));
    H5_CHECK(H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()),
             "cannot read dataset '" << path << "' in '" << st->file << "' (truncated or corrupt?)",
             path, st->file);
    ++st->datasets;
    return 0;
  } catch (const Error& e) {
    st->error = e.what();
    return -1;
  }
}

}  // namespace

int64_t verify_all(hid_t file, const std::string& path) {
  VerifyState st{path, 0, ""};
  const herr_t rc = H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit_object, &st, H5O_INFO_BASIC);
  if (!st.error.empty()) throw Error(st.error);
  H5_CHECK(rc, "cannot walk the objects of '" << path << "' (truncated or corrupt?)",
           "the object headers", path);
  return st.datasets;
}

}  // namespace dpt::h5
