// The benchmark itself: load the program, prepare inputs, warm up, time, summarize.
#pragma once

#include "options.h"

namespace mobilebench {

// Runs the benchmark described by `options`, printing the JSON-lines events (start, load,
// iteration..., output, etdump, summary) as it goes. Throws UsageError / RunError for
// expected failures; the caller reports them.
void run_benchmark(const RunnerOptions& options);

// The {"event":"version",...} line for --version.
void print_version();

}  // namespace mobilebench
