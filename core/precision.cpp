// Precision names: parse and print train.precision.
#include "core/precision.h"

#include "core/error.h"

namespace dpt {

Precision parse_precision(const std::string& name, const std::string& where) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "tf32") return Precision::kTf32;
  DPT_FAIL("unknown precision '" << name << "' at " << where << "; expected fp32, bf16 or tf32");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kBf16: return "bf16";
    case Precision::kTf32: return "tf32";
  }
  return "?";
}

}  // namespace dpt
