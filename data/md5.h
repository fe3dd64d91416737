// MD5 hex digests (OpenSSL) for verifying raw dataset files against known checksums.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dpt {

std::string md5_hex(const uint8_t* data, size_t n);
inline std::string md5_hex(const std::vector<uint8_t>& v) { return md5_hex(v.data(), v.size()); }

}  // namespace dpt
