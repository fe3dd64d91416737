// Precision names: parse and print train.precision.
#include "core/precision.h"

#include "core/error.h"

namespace dpt {

Precision parse_precision(const std::string& name, const std::string& where) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "tf32") return Precision::kTf32;
  if (name == "auto") return Precision::kAuto;
  DPT_FAIL("unknown precision '" << name << "' at " << where
                                 << "; expected fp32, bf16, tf32 or auto");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kTf32:
      return "tf32";
    case Precision::kAuto:
      return "auto";
  }
  return "?";
}

}  // namespace dpt
