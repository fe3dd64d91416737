// The CPU check that runs before anything else of dptrain (Note [cpu baseline] in cpu_info.h).
// Compiled for plain x86-64 (CMakeLists.txt): plain C only, no C++ library inline code.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu_info.h"

#ifndef DPT_MARCH
#define DPT_MARCH ""
#endif

namespace dpt {

namespace {

struct FeatureName {
  unsigned bit;
  const char* name;
};
const FeatureName kNames[] = {
    {kCpuSse3, "SSE3"},         {kCpuSsse3, "SSSE3"},       {kCpuSse41, "SSE4.1"},
    {kCpuSse42, "SSE4.2"},      {kCpuPopcnt, "POPCNT"},     {kCpuAvx, "AVX"},
    {kCpuAvx2, "AVX2"},         {kCpuFma, "FMA"},           {kCpuBmi1, "BMI1"},
    {kCpuBmi2, "BMI2"},         {kCpuF16c, "F16C"},         {kCpuMovbe, "MOVBE"},
    {kCpuLzcnt, "LZCNT"},       {kCpuAvx512f, "AVX512F"},   {kCpuAvx512bw, "AVX512BW"},
    {kCpuAvx512cd, "AVX512CD"}, {kCpuAvx512dq, "AVX512DQ"}, {kCpuAvx512vl, "AVX512VL"},
};

// A field of /proc/cpuinfo's first processor ("model name", "cpu family", "model").
void cpuinfo_field(const char* key, char* out, size_t size) {
  out[0] = '\0';
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  const size_t klen = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) != 0) continue;
    const char* p = line + klen;
    while (*p == ' ' || *p == '\t') ++p;
    if (*p != ':') continue;
    ++p;
    while (*p == ' ') ++p;
    snprintf(out, size, "%s", p);
    const size_t n = strlen(out);
    if (n > 0 && out[n - 1] == '\n') out[n - 1] = '\0';
    break;
  }
  fclose(f);
}

}  // namespace

unsigned cpu_features_present() {
  __builtin_cpu_init();
  unsigned f = 0;
  // __builtin_cpu_supports takes string literals only: one line per feature.
  if (__builtin_cpu_supports("sse3")) f |= kCpuSse3;
  if (__builtin_cpu_supports("ssse3")) f |= kCpuSsse3;
  if (__builtin_cpu_supports("sse4.1")) f |= kCpuSse41;
  if (__builtin_cpu_supports("sse4.2")) f |= kCpuSse42;
  if (__builtin_cpu_supports("popcnt")) f |= kCpuPopcnt;
  if (__builtin_cpu_supports("avx")) f |= kCpuAvx;
  if (__builtin_cpu_supports("avx2")) f |= kCpuAvx2;
  if (__builtin_cpu_supports("fma")) f |= kCpuFma;
  if (__builtin_cpu_supports("bmi")) f |= kCpuBmi1;
  if (__builtin_cpu_supports("bmi2")) f |= kCpuBmi2;
  if (__builtin_cpu_supports("f16c")) f |= kCpuF16c;
  if (__builtin_cpu_supports("movbe")) f |= kCpuMovbe;
  if (__builtin_cpu_supports("lzcnt")) f |= kCpuLzcnt;
  if (__builtin_cpu_supports("avx512f")) f |= kCpuAvx512f;
  if (__builtin_cpu_supports("avx512bw")) f |= kCpuAvx512bw;
  if (__builtin_cpu_supports("avx512cd")) f |= kCpuAvx512cd;
  if (__builtin_cpu_supports("avx512dq")) f |= kCpuAvx512dq;
  if (__builtin_cpu_supports("avx512vl")) f |= kCpuAvx512vl;
  return f;
}

unsigned cpu_features_required(const char* march) {
  const unsigned v2 = kCpuSse3 | kCpuSsse3 | kCpuSse41 | kCpuSse42 | kCpuPopcnt;
  const unsigned v3 =
      v2 | kCpuAvx | kCpuAvx2 | kCpuFma | kCpuBmi1 | kCpuBmi2 | kCpuF16c | kCpuMovbe | kCpuLzcnt;
  const unsigned v4 = v3 | kCpuAvx512f | kCpuAvx512bw | kCpuAvx512cd | kCpuAvx512dq | kCpuAvx512vl;
  if (strcmp(march, "x86-64-v2") == 0) return v2;
  if (strcmp(march, "x86-64-v3") == 0) return v3;
  if (strcmp(march, "x86-64-v4") == 0) return v4;
  return 0;  // x86-64 (nothing beyond the baseline), or "native": built for this very CPU
}

int cpu_baseline_message(const char* cpu, unsigned present, unsigned required, const char* march,
                         char* buf, size_t size) {
  char missing[256] = "";
  int count = 0;
  for (const FeatureName& f : kNames) {
    if ((required & f.bit) == 0 || (present & f.bit) != 0) continue;
    if (count++ > 0) strncat(missing, ", ", sizeof missing - strlen(missing) - 1);
    strncat(missing, f.name, sizeof missing - strlen(missing) - 1);
  }
  if (count == 0) {
    if (size > 0) buf[0] = '\0';
    return 0;
  }
  // The level this CPU does reach: what a rebuild for it should ask for.
  const char* fits = "x86-64";
  static const char* const kLevels[] = {"x86-64-v2", "x86-64-v3", "x86-64-v4"};
  for (const char* level : kLevels) {
    const unsigned need = cpu_features_required(level);
    if ((present & need) == need) fits = level;
  }
  snprintf(buf, size,
           "dptrain: error: this CPU (%s) lacks %s, which this dptrain needs: it was built for "
           "%s (the Release build's -march). Run it on a CPU that has them, or rebuild for this "
           "one with 'bash scripts/build.sh -DDPT_MARCH=%s'.\n",
           cpu, missing, march, fits);
  return count;
}

void read_cpu_description(char* buf, size_t size) {
  char name[256], family[32], model[32];
  cpuinfo_field("model name", name, sizeof name);
  cpuinfo_field("cpu family", family, sizeof family);
  cpuinfo_field("model", model, sizeof model);
  if (name[0] == '\0') {
    snprintf(buf, size, "unknown CPU");
  } else if (family[0] != '\0' && model[0] != '\0') {
    snprintf(buf, size, "%s (family %s model %s)", name, family, model);
  } else {
    snprintf(buf, size, "%s", name);
  }
}

namespace {

// Before every constructor of the binary that may use the -march instruction sets.
__attribute__((constructor(101))) void refuse_a_cpu_below_the_build() {
  const unsigned required = cpu_features_required(DPT_MARCH);
  const unsigned present = cpu_features_present();
  if ((present & required) == required) return;
  char cpu[320], msg[1024];
  read_cpu_description(cpu, sizeof cpu);
  cpu_baseline_message(cpu, present, required, DPT_MARCH, msg, sizeof msg);
  const ssize_t ignored = write(2, msg, strlen(msg));
  (void)ignored;
  _exit(1);
}

}  // namespace

}  // namespace dpt
