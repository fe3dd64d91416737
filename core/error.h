// Error type and checking macros shared by every module: failures carry file:line and what to do.
#pragma once
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>

namespace dpt {

// Every failure in dptrain is a dpt::Error; main() prints it and ends the whole job with its
// exit code (see ExitCode in core/exit_codes.h and the table in docs/FAULTS.md).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, int exit_code = 1)
      : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// One sentence for an exception that is not a dpt::Error (a library's own text, such as
// "std::bad_alloc" or "stoul", says nothing a user can act on).
inline std::string explain_exception(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e))
    return "out of memory (std::bad_alloc): the config or a data/checkpoint file asks for more "
           "memory than this machine has; check batch_size, the layer sizes and the files";
  if (dynamic_cast<const std::invalid_argument*>(&e) || dynamic_cast<const std::out_of_range*>(&e))
    return std::string("a value could not be read as a number (") + e.what() +
           "); this is a bug in dptrain's checks: please report it with the command line";
  return e.what();
}

// Builds a message from stream pieces: DPT_FAIL("shard " << path << " has " << n).
#define DPT_FAIL(msg)                  \
  do {                                 \
    std::ostringstream dpt_os_;        \
    dpt_os_ << msg;                    \
    throw ::dpt::Error(dpt_os_.str()); \
  } while (0)

// Like DPT_FAIL, with the process exit code the error should end the job with.
#define DPT_FAIL_CODE(code, msg)             \
  do {                                       \
    std::ostringstream dpt_os_;              \
    dpt_os_ << msg;                          \
    throw ::dpt::Error(dpt_os_.str(), code); \
  } while (0)

#define DPT_CHECK(cond, msg)    \
  do {                          \
    if (!(cond)) DPT_FAIL(msg); \
  } while (0)

// Internal invariants: a bug in dptrain, not in the user's input.
#define DPT_ASSERT(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) DPT_FAIL("internal error at " << __FILE__ << ":" << __LINE__ << ": " #cond); \
  } while (0)

}  // namespace dpt
