#include "crash_guard.h"

#include <csignal>
#include <cstring>
#include <unistd.h>

namespace mobilebench {
namespace {

// Fixed strings: formatting is not async-signal-safe.
const char* line_for(int signal_number) {
  switch (signal_number) {
    case SIGSEGV:
      return "{\"event\":\"error\",\"message\":\"runner crashed: segmentation fault (SIGSEGV)\",\"signal\":\"SIGSEGV\"}\n";
    case SIGABRT:
      return "{\"event\":\"error\",\"message\":\"runner aborted (SIGABRT), probably a failed ExecuTorch check; see stderr\",\"signal\":\"SIGABRT\"}\n";
    case SIGBUS:
      return "{\"event\":\"error\",\"message\":\"runner crashed: bus error (SIGBUS)\",\"signal\":\"SIGBUS\"}\n";
    case SIGFPE:
      return "{\"event\":\"error\",\"message\":\"runner crashed: arithmetic exception (SIGFPE)\",\"signal\":\"SIGFPE\"}\n";
    default:
      return "{\"event\":\"error\",\"message\":\"runner crashed: illegal instruction (SIGILL)\",\"signal\":\"SIGILL\"}\n";
  }
}

void on_fatal_signal(int signal_number) {
  const char* line = line_for(signal_number);
  ssize_t ignored = ::write(STDOUT_FILENO, line, std::strlen(line));
  (void)ignored;
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

}  // namespace

void install_crash_guard() {
  static const int kFatalSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
  for (int signal_number : kFatalSignals) {
    struct sigaction action {};
    action.sa_handler = on_fatal_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(signal_number, &action, nullptr);
  }
}

}  // namespace mobilebench
