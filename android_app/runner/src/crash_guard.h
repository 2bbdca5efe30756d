// Last line of defence for the JSON-lines protocol: if the process is killed by a fatal
// signal (an ExecuTorch ET_CHECK abort, a segfault in a kernel), print one
// {"event":"error",...} line before dying, so the reader still learns what happened.
// Expected failures never get here: they are validated first and reported normally.
#pragma once

namespace mobilebench {

// Installs handlers for SIGSEGV, SIGABRT, SIGBUS, SIGFPE and SIGILL. Each writes the line
// with async-signal-safe calls only, then re-raises the signal with its default action,
// so the exit status still shows the signal.
void install_crash_guard();

}  // namespace mobilebench
