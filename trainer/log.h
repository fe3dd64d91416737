// Log: the one helper through which rank 0 speaks (console and log.txt); other ranks stay silent.
#pragma once
#include <cstdint>
#include <string>

namespace dpt::log {

void init(int rank, const std::string& log_file);  // log_file may be empty; appends
void info(const std::string& line);                // rank 0: console and log.txt (checked)
void warn(const std::string& line);                // info() with a "Warning: " prefix
void progress(const std::string& line);  // rank 0: redraws one terminal line; no-op off a tty
bool interactive();                      // stdout is a terminal

// Formatting for the console lines: printf of one number, Keras' progress bar and its ETA.
std::string format(const char* printf_format, double v);
std::string bar(int64_t done, int64_t total);  // "[=====>....]", 30 wide
std::string eta(double seconds);               // "7s", "2:05", "1:02:05" as Keras prints an ETA

}  // namespace dpt::log
