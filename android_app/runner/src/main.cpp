// mobilebench_runner: benchmarks one method of an ExecuTorch program on the CPU (one
// thread by default) and reports every event as one JSON object per line on stdout.
// See android_app/README.md for the flags, the events and the statistics.
#include <cstdio>
#include <exception>
#include <string>

#include <executorch/runtime/platform/runtime.h>

#include "benchmark.h"
#include "crash_guard.h"
#include "json_line.h"
#include "options.h"
#include "runner_error.h"

namespace {

// `model`: the --model index the error belongs to (--interleave), or -1.
int report_error(const std::string& message, int exit_code, int model = -1) {
  mobilebench::JsonLine line("error");
  line.add("message", message).add("exit_code", exit_code);
  if (model >= 0) line.add("model", model);
  line.emit();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  mobilebench::install_crash_guard();
  try {
    const mobilebench::RunnerOptions options = mobilebench::parse_options(argc, argv);
    if (options.show_help) {
      std::fputs(mobilebench::usage_text(), stdout);
      return 0;
    }
    if (options.show_version) {
      mobilebench::print_version();
      return 0;
    }
    executorch::runtime::runtime_init();
    mobilebench::run_benchmark(options);
    return 0;
  } catch (const mobilebench::UsageError& error) {
    std::fputs(mobilebench::usage_text(), stderr);
    return report_error(error.message, mobilebench::kExitUsageError);
  } catch (const mobilebench::RunError& error) {
    return report_error(error.message, mobilebench::kExitRunError, error.model);
  } catch (const std::exception& error) {
    return report_error(std::string("unexpected failure: ") + error.what(), mobilebench::kExitRunError);
  }
}
