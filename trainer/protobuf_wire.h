// ProtoWriter: the protobuf wire format for the few messages dptrain writes (TensorBoard, ONNX).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace dpt {

// Note [hand-encoded protobuf]: TensorBoard's Event and ONNX's ModelProto are protobuf
// messages. Debian 12 has libprotobuf and libonnx-dev (ONNX 1.12's generated classes), but no
// TensorBoard protos, so one encoder is needed anyway; the wire format of the fields used here
// (varints, 64/32-bit scalars, length-delimited bytes and nested messages, packed repeats) is
// these 60 lines, and each output is read back by the real tensorboard, onnx and onnxruntime
// Python packages in the tests (tests/export). Fields are appended in the order called; every
// protobuf reader accepts any order.
class ProtoWriter {
 public:
  const std::string& bytes() const { return out_; }

  void varint(int field, uint64_t v) {
    key(field, 0);
    raw_varint(v);
  }
  void int64(int field, int64_t v) { varint(field, uint64_t(v)); }  // int32/int64/enum/bool
  void fixed64(int field, double v) {
    key(field, 1);
    raw(&v, 8);
  }
  void fixed32(int field, float v) {
    key(field, 5);
    raw(&v, 4);
  }
  void bytes(int field, const std::string& v) {
    key(field, 2);
    raw_varint(v.size());
    out_ += v;
  }
  void bytes(int field, const void* data, size_t n) {
    key(field, 2);
    raw_varint(n);
    out_.append(static_cast<const char*>(data), n);
  }
  void message(int field, const ProtoWriter& m) { bytes(field, m.out_); }
  void packed_floats(int field, const std::vector<float>& v) {
    bytes(field, v.data(), v.size() * sizeof(float));
  }
  void packed_int64s(int field, const std::vector<int64_t>& v) {
    ProtoWriter p;
    for (int64_t x : v) p.raw_varint(uint64_t(x));
    bytes(field, p.out_);
  }

 private:
  // x86-64 is little-endian, as the wire format's fixed-width fields are.
  void raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void key(int field, int wire_type) { raw_varint(uint64_t(field) << 3 | uint64_t(wire_type)); }
  void raw_varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += char((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += char(v);
  }
  std::string out_;
};

}  // namespace dpt
