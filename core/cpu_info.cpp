// The CPU's name for messages (the plain-C reader lives in cpu_baseline.cpp).
#include "core/cpu_info.h"

namespace dpt {

std::string cpu_description() {
  char buf[320];
  read_cpu_description(buf, sizeof buf);
  return buf;
}

}  // namespace dpt
