// Stop-signal handlers: record the signal only; the training loop acts on it at a step boundary.
#include "trainer/signals.h"

#include <csignal>

namespace dpt {

namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int stop_signal() { return int(g_signal); }

}  // namespace dpt
