// Command-line options of mobilebench_runner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runner_error.h"

namespace mobilebench {

// One --model and the inputs given for it.
struct ModelSpec {
  std::string path;                                // --model
  std::vector<std::vector<int64_t>> input_shapes;  // --input-shape, one per input, in order
  std::vector<std::string> input_files;            // --input, raw float32, one per input
};

struct RunnerOptions {
  // --model, once (or twice with --interleave). --input-shape and --input belong to the
  // nearest --model before them; given before any --model, to the first.
  std::vector<ModelSpec> models;
  bool interleave = false;                         // --interleave: both models, ABBA pairs
  std::string method = "forward";                  // --method
  int warmup = 5;                                  // --warmup: untimed-for-statistics runs
                                                   // (with --interleave: warm-up pairs)
  int iterations = 20;                             // --iterations: timed runs of each model
                                                   // (the minimum when --min-seconds/
                                                   // --target-rel-ci; with --interleave:
                                                   // timed pairs)
  int threads = 1;                                 // --threads: ExecuTorch thread pool size
  uint32_t seed = 0;                               // --seed of the generated inputs
  double min_seconds = 0.0;                        // --min-seconds of timed execution
  std::optional<double> target_rel_ci;             // --target-rel-ci X (0 < X < 1)
  int max_iterations = 0;                          // --max-iterations (0 = default)
  std::string etdump_path;                         // --etdump
  std::string dump_output_path;                    // --dump-output
  bool show_version = false;                       // --version
  bool show_help = false;                          // --help

  // Timed iterations are open-ended (stop decided at run time) with either option.
  bool adaptive() const { return target_rel_ci.has_value() || min_seconds > 0.0; }
};

// Cap on timed iterations of an adaptive run when --max-iterations is not given.
inline constexpr int kDefaultMaxIterations = 1000;

// Parses argv (both `--flag value` and `--flag=value`); throws UsageError.
RunnerOptions parse_options(int argc, char** argv);

const char* usage_text();

}  // namespace mobilebench
