// MD5 via OpenSSL's EVP interface.
#include "data/md5.h"

#include <openssl/evp.h>

#include "core/error.h"

namespace dpt {

std::string md5_hex(const uint8_t* data, size_t n) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  DPT_CHECK(EVP_Digest(data, n, digest, &len, EVP_md5(), nullptr) == 1, "OpenSSL MD5 failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace dpt
