#include "options.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>

namespace mobilebench {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw UsageError{message};
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t min, int64_t max) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < min || value > max) {
    fail(flag + " expects an integer from " + std::to_string(min) + " to " +
         std::to_string(max) + ", got '" + text + "'");
  }
  return value;
}

double parse_double(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(value)) {
    fail(flag + " expects a number, got '" + text + "'");
  }
  return value;
}

// "1,3,224,224" -> {1, 3, 224, 224}; every dimension >= 1.
std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                            : comma - start);
    errno = 0;
    char* end = nullptr;
    const long long dim = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || errno == ERANGE || dim < 1 || dim > INT32_MAX) {
      fail("--input-shape expects positive integers separated by commas (e.g. 1,3,224,224), got '" +
           text + "'");
    }
    shape.push_back(dim);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return shape;
}

}  // namespace

const char* usage_text() {
  return "usage: mobilebench_runner --model PATH [options]\n"
         "       mobilebench_runner --model A --model B --interleave [options]\n"
         "\n"
         "Runs an ExecuTorch program and prints one JSON object per line on stdout.\n"
         "\n"
         "  --model PATH            the .pte program (required; twice with --interleave)\n"
         "  --interleave            load both programs and run them alternately in pairs:\n"
         "                          pair p runs A then B when p is even, B then A when odd\n"
         "  --method NAME           method to run (default forward)\n"
         "  --warmup N              warm-up runs before timing (default 5; pairs when\n"
         "                          interleaved)\n"
         "  --iterations N          timed runs of each model; the minimum when adaptive\n"
         "                          (default 20; pairs when interleaved)\n"
         "  --threads N             ExecuTorch thread pool size (default 1)\n"
         "  --input-shape D,D,...   shape of the next input (default: from the program)\n"
         "  --input PATH            raw little-endian float32 data for the next input\n"
         "                          (both belong to the --model before them)\n"
         "  --seed N                seed of the generated inputs, 0..2^32-1 (default 0);\n"
         "                          input j is mobilebench's fixed_input(shape, N + j)\n"
         "  --min-seconds S         keep timing until S seconds of timed runs\n"
         "  --target-rel-ci X       stop once the 95% CI of the median is within +-X of it\n"
         "  --max-iterations N      cap on timed runs when adaptive (default 1000)\n"
         "  --etdump PATH           write an ExecuTorch ETDump profile (event tracer builds);\n"
         "                          interleaved: of model 0 only (e.g. traced vs untraced)\n"
         "  --dump-output PATH      write output 0 of the last run as raw float32\n"
         "  --version               print the build's versions as one JSON line\n"
         "  --help                  this text\n";
}

RunnerOptions parse_options(int argc, char** argv) {
  RunnerOptions options;
  bool have_max_iterations = false;
  // Where --input-shape/--input go: the last --model so far (before any, the first).
  const auto current_model = [&]() -> ModelSpec& {
    if (options.models.empty()) options.models.emplace_back();
    return options.models.back();
  };
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::optional<std::string> inline_value;
    if (flag.rfind("--", 0) == 0) {
      const size_t equals = flag.find('=');
      if (equals != std::string::npos) {
        inline_value = flag.substr(equals + 1);
        flag = flag.substr(0, equals);
      }
    }
    const auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) fail(flag + " needs a value");
      return argv[++i];
    };
    const auto no_value = [&]() {
      if (inline_value) fail(flag + " takes no value");
    };

    if (flag == "--model") {
      std::string path = value();
      if (path.empty()) fail("--model needs a non-empty path");
      if (options.models.empty() || !options.models.back().path.empty()) options.models.emplace_back();
      options.models.back().path = std::move(path);
    } else if (flag == "--interleave") {
      no_value();
      options.interleave = true;
    } else if (flag == "--method") {
      options.method = value();
      if (options.method.empty()) fail("--method needs a non-empty name");
    } else if (flag == "--warmup") {
      options.warmup = static_cast<int>(parse_int(flag, value(), 0, 1000000));
    } else if (flag == "--iterations") {
      options.iterations = static_cast<int>(parse_int(flag, value(), 1, 10000000));
    } else if (flag == "--threads") {
      options.threads = static_cast<int>(parse_int(flag, value(), 1, 256));
    } else if (flag == "--input-shape") {
      current_model().input_shapes.push_back(parse_shape(value()));
    } else if (flag == "--input") {
      std::string path = value();
      if (path.empty()) fail("--input needs a non-empty path");
      current_model().input_files.push_back(std::move(path));
    } else if (flag == "--seed") {
      options.seed = static_cast<uint32_t>(parse_int(flag, value(), 0, UINT32_MAX));
    } else if (flag == "--min-seconds") {
      options.min_seconds = parse_double(flag, value());
      if (options.min_seconds < 0) fail("--min-seconds must be >= 0");
    } else if (flag == "--target-rel-ci") {
      const double target = parse_double(flag, value());
      if (!(target > 0.0 && target < 1.0)) {
        fail("--target-rel-ci expects a fraction between 0 and 1 (e.g. 0.01 for +-1%)");
      }
      options.target_rel_ci = target;
    } else if (flag == "--max-iterations") {
      options.max_iterations = static_cast<int>(parse_int(flag, value(), 1, 10000000));
      have_max_iterations = true;
    } else if (flag == "--etdump") {
      options.etdump_path = value();
      if (options.etdump_path.empty()) fail("--etdump needs a non-empty path");
    } else if (flag == "--dump-output") {
      options.dump_output_path = value();
      if (options.dump_output_path.empty()) fail("--dump-output needs a non-empty path");
    } else if (flag == "--version") {
      no_value();
      options.show_version = true;
    } else if (flag == "--help" || flag == "-h") {
      no_value();
      options.show_help = true;
    } else {
      fail("unknown option '" + flag + "' (see --help)");
    }
  }
  if (options.show_help || options.show_version) return options;
  if (options.models.empty() || options.models.front().path.empty()) fail("--model PATH is required");
  if (options.interleave) {
    if (options.models.size() != 2) {
      fail("--interleave needs exactly two --model programs, got " + std::to_string(options.models.size()));
    }
    if (options.adaptive()) {
      fail("--interleave runs a fixed number of pairs; --target-rel-ci and --min-seconds do not apply "
           "(the caller decides from the paired samples whether to measure more)");
    }
    if (!options.dump_output_path.empty()) {
      fail("--dump-output writes one program's output; it does not apply with --interleave");
    }
  } else if (options.models.size() > 1) {
    fail("--model was given " + std::to_string(options.models.size()) +
         " times; to run two programs alternately in one process, add --interleave");
  }
  if (have_max_iterations && !options.adaptive()) {
    fail("--max-iterations only applies with --target-rel-ci or --min-seconds");
  }
  if (!have_max_iterations) {
    options.max_iterations = std::max(options.iterations, kDefaultMaxIterations);
  }
  if (options.max_iterations < options.iterations) {
    fail("--max-iterations (" + std::to_string(options.max_iterations) +
         ") is below --iterations (" + std::to_string(options.iterations) + ")");
  }
  for (const ModelSpec& model : options.models) {
    if (!model.input_files.empty() && !model.input_shapes.empty() &&
        model.input_files.size() != model.input_shapes.size()) {
      fail("give --input-shape once per --input file, or not at all");
    }
  }
  return options;
}

}  // namespace mobilebench
