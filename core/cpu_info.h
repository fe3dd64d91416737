// The CPU dptrain runs on: its name for messages, and the instruction sets this build needs.
#pragma once
#include <cstddef>
#include <string>

namespace dpt {

// "AMD EPYC (family 25 model 1)" from /proc/cpuinfo: "AMD EPYC" alone names no generation.
std::string cpu_description();

// Note [cpu baseline]: the Release build is compiled for one x86-64 level (DPT_MARCH, default
// x86-64-v3: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE), so the compiler may use AVX2 in any
// function. On an older CPU that would be an "Illegal instruction" crash at a random place.
// A constructor in core/cpu_baseline.cpp, compiled for plain x86-64 and run before every
// other constructor of the binary (priority 101), checks the CPU with __builtin_cpu_supports
// and exits with one sentence naming what is missing. Everything below is plain C inside (no
// inline C++ from headers, whose one linked copy may be an AVX2 one).
enum CpuFeature : unsigned {
  kCpuSse3 = 1u << 0,
  kCpuSsse3 = 1u << 1,
  kCpuSse41 = 1u << 2,
  kCpuSse42 = 1u << 3,
  kCpuPopcnt = 1u << 4,
  kCpuAvx = 1u << 5,
  kCpuAvx2 = 1u << 6,
  kCpuFma = 1u << 7,
  kCpuBmi1 = 1u << 8,
  kCpuBmi2 = 1u << 9,
  kCpuF16c = 1u << 10,
  kCpuMovbe = 1u << 11,
  kCpuLzcnt = 1u << 12,
  kCpuAvx512f = 1u << 13,
  kCpuAvx512bw = 1u << 14,
  kCpuAvx512cd = 1u << 15,
  kCpuAvx512dq = 1u << 16,
  kCpuAvx512vl = 1u << 17,
};
unsigned cpu_features_present();                    // this CPU's, by __builtin_cpu_supports
unsigned cpu_features_required(const char* march);  // "x86-64-v2" | "-v3" | "-v4"; else 0
// Writes the refusal for a CPU lacking some of the required features into buf (empty string
// when none is missing) and returns the number of missing features.
int cpu_baseline_message(const char* cpu, unsigned present, unsigned required, const char* march,
                         char* buf, size_t size);
// The first "model name" of /proc/cpuinfo with its family and model, into buf.
void read_cpu_description(char* buf, size_t size);

}  // namespace dpt
