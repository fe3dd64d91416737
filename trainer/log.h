// Log: the one helper through which rank 0 speaks (console and log.txt); other ranks stay silent.
#pragma once
#include <string>

namespace dpt::log {

void init(int rank, const std::string& log_file);  // log_file may be empty; appends
void info(const std::string& line);                 // rank 0: console and log.txt (checked)
void warn(const std::string& line);                 // info() with a "Warning: " prefix
void progress(const std::string& line);             // rank 0: redraws one terminal line; no-op off a tty
bool interactive();                                 // stdout is a terminal

}  // namespace dpt::log
