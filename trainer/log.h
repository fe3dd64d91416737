// Log: the one helper through which rank 0 speaks (console and log.txt); other ranks stay silent.
#pragma once
#include <string>

namespace dpt::log {

void init(int rank, const std::string& log_file);  // log_file may be empty
void info(const std::string& line);                 // rank 0: console and log.txt
void progress(const std::string& line);             // rank 0: redraws one terminal line; no-op off a tty
bool interactive();                                 // stdout is a terminal
void close();

}  // namespace dpt::log
