// Known MD5 checksums of the decompressed raw dataset files.
#pragma once
#include <string>

namespace dpt {

// Empty when the file has no known checksum (then only the structure is verified).
std::string known_md5(const std::string& dataset, const std::string& file);

}  // namespace dpt
