#include "benchmark.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sched.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/core/exec_aten/util/scalar_type_util.h>
#if MOBILEBENCH_HAVE_ETDUMP
#include <executorch/devtools/etdump/etdump_flatcc.h>
#endif

#include "build_info.h"
#include "input_data.h"
#include "json_line.h"
#include "median_ci.h"
#include "memory_usage.h"
#include "output_files.h"
#include "runner_error.h"
#include "threadpool_control.h"

namespace mobilebench {
namespace {

using executorch::aten::ScalarType;
using executorch::extension::Module;
using executorch::extension::TensorPtr;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::MethodMeta;
using executorch::runtime::Program;
using executorch::runtime::Tag;
using Clock = std::chrono::steady_clock;

constexpr double kConfidence = 0.95;

double ms_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// "InvalidProgram (ExecuTorch error 0x23)"
std::string describe(Error error) {
  std::string name = executorch::runtime::to_string(error);
  if (name.rfind("Error::", 0) == 0) name = name.substr(7);
  char code[48];
  std::snprintf(code, sizeof(code), " (ExecuTorch error 0x%x)", static_cast<unsigned>(error));
  return name + code;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

size_t element_count(const std::vector<int64_t>& shape) {
  size_t count = 1;
  for (int64_t dim : shape) count *= static_cast<size_t>(dim);
  return count;
}

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

std::string json_cpu_list(const std::vector<int>& cpus) {
  std::vector<int64_t> values(cpus.begin(), cpus.end());
  return json_int_array(values);
}

// Fails early, with a message a user can act on, for a model path ExecuTorch's loader
// would only report as a bare error code.
void check_model_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) throw RunError{"model file not found: " + path};
    throw RunError{"cannot read model file " + path + ": " + std::strerror(errno)};
  }
  if (!S_ISREG(info.st_mode)) throw RunError{"model path is not a regular file: " + path};
  if (::access(path.c_str(), R_OK) != 0) {
    throw RunError{"cannot read model file " + path + ": " + std::strerror(errno)};
  }
  if (info.st_size == 0) throw RunError{"model file is empty: " + path};
}

struct InputSpec {
  std::vector<int64_t> shape;
  std::string source;  // "seed" or the --input path
  std::vector<float> data;
  TensorPtr tensor;
};

// Reads the method's input metadata and decides each input's shape and data, validating
// everything ExecuTorch would otherwise only reject deep inside (or abort on).
std::vector<InputSpec> prepare_inputs(const MethodMeta& meta, const ModelSpec& model,
                                      const RunnerOptions& options) {
  const size_t count = meta.num_inputs();
  if (!model.input_shapes.empty() && model.input_shapes.size() != count) {
    throw UsageError{"the program's method '" + options.method + "' takes " +
                     std::to_string(count) + " input(s), but --input-shape was given " +
                     std::to_string(model.input_shapes.size()) + " time(s)"};
  }
  if (!model.input_files.empty() && model.input_files.size() != count) {
    throw UsageError{"the program's method '" + options.method + "' takes " +
                     std::to_string(count) + " input(s), but --input was given " +
                     std::to_string(model.input_files.size()) + " time(s)"};
  }
  std::vector<InputSpec> inputs(count);
  for (size_t i = 0; i < count; ++i) {
    const std::string name = "input " + std::to_string(i);
    const auto tag = meta.input_tag(i);
    if (!tag.ok()) throw RunError{"cannot read the metadata of " + name + ": " + describe(tag.error())};
    if (*tag != Tag::Tensor) {
      throw RunError{name + " of method '" + options.method +
                     "' is not a tensor; the runner feeds tensor inputs only"};
    }
    const auto info = meta.input_tensor_meta(i);
    if (!info.ok()) throw RunError{"cannot read the metadata of " + name + ": " + describe(info.error())};
    if (info->scalar_type() != ScalarType::Float) {
      throw RunError{name + " has dtype " + executorch::runtime::toString(info->scalar_type()) +
                     "; the runner feeds float32 inputs only"};
    }
    std::vector<int64_t> program_shape(info->sizes().begin(), info->sizes().end());
    InputSpec& spec = inputs[i];
    spec.shape = model.input_shapes.empty() ? program_shape : model.input_shapes[i];
    if (spec.shape.size() != program_shape.size()) {
      throw RunError{"--input-shape " + shape_text(spec.shape) + " for " + name + " has " +
                     std::to_string(spec.shape.size()) + " dimensions; the program expects " +
                     std::to_string(program_shape.size()) + " (" + shape_text(program_shape) + ")"};
    }
    // A program's metadata gives the exact shape of a static input and the upper bound of
    // a dynamic one, so a larger tensor can never fit; a smaller one is checked by
    // ExecuTorch when the input is set (static shapes refuse any change).
    for (size_t d = 0; d < spec.shape.size(); ++d) {
      if (spec.shape[d] > program_shape[d]) {
        throw RunError{"--input-shape " + shape_text(spec.shape) + " for " + name +
                       " does not fit the program's input shape " + shape_text(program_shape)};
      }
    }
    spec.data.resize(element_count(spec.shape));
    if (model.input_files.empty()) {
      spec.source = "seed";
      fill_fixed_input(static_cast<uint32_t>(options.seed + i), spec.data);
    } else {
      spec.source = model.input_files[i];
      spec.data = read_float32_file(model.input_files[i], spec.data.size(),
                                    name + " of shape " + shape_text(spec.shape));
    }
    std::vector<executorch::aten::SizesType> sizes(spec.shape.begin(), spec.shape.end());
    spec.tensor = executorch::extension::from_blob(spec.data.data(), std::move(sizes),
                                                   ScalarType::Float);
  }
  return inputs;
}

// The delegates the method uses, each named once (a program holds one blob per
// delegated subgraph).
std::vector<std::string> backend_names(const MethodMeta& meta) {
  std::vector<std::string> names;
  for (size_t b = 0; b < meta.num_backends(); ++b) {
    const auto name = meta.get_backend_name(b);
    if (name.ok() && std::find(names.begin(), names.end(), *name) == names.end()) {
      names.emplace_back(*name);
    }
  }
  return names;
}

// [{"shape":[1,3,224,224],"dtype":"float32","source":"seed"}, ...]
std::string inputs_json(const std::vector<InputSpec>& inputs) {
  std::string json = "[";
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string source;
    append_json_string(source, inputs[i].source);
    json += std::string(i ? "," : "") + "{\"shape\":" + json_int_array(inputs[i].shape) +
            ",\"dtype\":\"float32\",\"source\":" + source + "}";
  }
  return json + "]";
}

void emit_start(const RunnerOptions& options, size_t pool_threads) {
  JsonLine start("start");
  start.add("runner", kRunnerName)
      .add("runner_version", kRunnerVersion)
      .add("executorch_version", kExecutorchVersion)
      .add("executorch_git_version", kExecutorchGitVersion);
  if (options.interleave) {
    std::vector<std::string> paths;
    for (const ModelSpec& model : options.models) paths.push_back(model.path);
    start.add("models", paths).add("interleave", true);
  } else {
    start.add("model", options.models.front().path);
  }
  start.add("method", options.method)
      .add("threads", options.threads)
      .add("threadpool_threads", pool_threads)
      .add("warmup", options.warmup)
      .add("iterations", options.iterations)
      .add("seed", options.seed)
      .add("pid", static_cast<int64_t>(::getpid()))
      .add_raw("affinity", json_cpu_list(allowed_cpus()))
      .add("etdump", !options.etdump_path.empty());
  if (options.adaptive()) {
    start.add("max_iterations", options.max_iterations).add("min_seconds", options.min_seconds);
  }
  if (options.target_rel_ci) start.add("target_rel_ci", *options.target_rel_ci);
  start.emit();
}

// Adds "peak_rss_bytes" (null where /proc/self/status cannot be read).
void add_peak_rss(JsonLine& line, std::optional<int64_t> bytes) {
  if (bytes) {
    line.add("peak_rss_bytes", *bytes);
  } else {
    line.add_null("peak_rss_bytes");
  }
}

// `model` is the --model index with --interleave, -1 for a single program.
void emit_summary(const std::vector<double>& sorted_ms, const RunnerOptions& options,
                  const char* stop_reason, double timed_s, int model,
                  std::optional<int64_t> peak_rss) {
  const SampleSummary summary = summarize_sorted(sorted_ms, kConfidence);
  JsonLine line("summary");
  if (model >= 0) line.add("model", model);
  line.add("iterations", summary.count)
      .add("warmup", options.warmup)
      .add_ms("median_ms", summary.median)
      .add_ms("mean_ms", summary.mean)
      .add_ms("min_ms", summary.min)
      .add_ms("max_ms", summary.max)
      .add_ms("std_ms", summary.stddev);
  if (summary.has_ci) {
    line.add_ms("ci95_low_ms", summary.ci_low)
        .add_ms("ci95_high_ms", summary.ci_high)
        .add("ci95_coverage", summary.ci_coverage)
        .add("ci_rel_halfwidth", summary.ci_rel_halfwidth);
  } else {
    line.add_null("ci95_low_ms").add_null("ci95_high_ms").add_null("ci95_coverage").add_null("ci_rel_halfwidth");
  }
  if (options.target_rel_ci) line.add("target_rel_ci", *options.target_rel_ci);
  line.add("stop_reason", stop_reason).add("timed_s", timed_s);
  add_peak_rss(line, peak_rss);
  line.emit();
}

struct LoadTimes {
  double program_ms = 0;  // read and verify the file
  double method_ms = 0;   // memory planning, delegate init (XNNPACK packs its weights here)
  double total_ms() const { return program_ms + method_ms; }
};

// One program, loaded, with its inputs prepared and accepted by the method.
struct LoadedProgram {
  std::unique_ptr<Module> module;
  std::vector<InputSpec> inputs;
  LoadTimes times;
  std::vector<std::string> backends;
  size_t num_outputs = 0;
  std::vector<int64_t> planned_buffer_bytes;  // the method's memory-planned buffers
};

// Inputs are copied into the method before EVERY run, outside the clock: memory planning
// may reuse an input's buffer for later activations, so after one run it no longer holds
// the input. (Setting them once gives wrong outputs from the second run on.)
void set_inputs(LoadedProgram& program, const std::string& method) {
  for (size_t i = 0; i < program.inputs.size(); ++i) {
    const Error error = program.module->set_input(method, program.inputs[i].tensor, i);
    if (error != Error::Ok) {
      throw RunError{"the program rejected input " + std::to_string(i) + " of shape " +
                     shape_text(program.inputs[i].shape) + ": " + describe(error) +
                     " (a program exported with static shapes accepts only its own shape)"};
    }
  }
}

LoadedProgram load_program(const ModelSpec& model, const RunnerOptions& options,
                           std::unique_ptr<executorch::runtime::EventTracer> tracer) {
  LoadedProgram program;
  program.module = std::make_unique<Module>(model.path, Module::LoadMode::File, std::move(tracer));
  Module& module = *program.module;

  const auto load_start = Clock::now();
  // InternalConsistency verifies the flatbuffer before anything reads it, so a corrupt
  // or truncated file is an error here instead of a crash later.
  const Error program_error = module.load(Program::Verification::InternalConsistency);
  const auto program_end = Clock::now();
  if (program_error != Error::Ok) {
    throw RunError{"cannot load " + model.path + ": not a valid ExecuTorch program: " +
                   describe(program_error)};
  }
  const auto names = module.method_names();
  if (!names.ok()) throw RunError{"cannot list the program's methods: " + describe(names.error())};
  if (names->count(options.method) == 0) {
    std::vector<std::string> sorted_names(names->begin(), names->end());
    std::sort(sorted_names.begin(), sorted_names.end());
    std::string available;
    for (const auto& name : sorted_names) available += (available.empty() ? "" : ", ") + name;
    throw RunError{"the program has no method '" + options.method + "' (it has: " + available + ")"};
  }
  const auto meta = module.method_meta(options.method);
  if (!meta.ok()) throw RunError{"cannot read method metadata: " + describe(meta.error())};
  program.inputs = prepare_inputs(*meta, model, options);
  program.backends = backend_names(*meta);
  program.num_outputs = meta->num_outputs();
  for (size_t b = 0; b < meta->num_memory_planned_buffers(); ++b) {
    const auto size = meta->memory_planned_buffer_size(b);
    if (!size.ok()) {
      throw RunError{"cannot read the size of planned buffer " + std::to_string(b) + ": " +
                     describe(size.error())};
    }
    program.planned_buffer_bytes.push_back(*size);
  }

  const auto method_start = Clock::now();
  const Error method_error = module.load_method(options.method);
  const auto method_end = Clock::now();
  if (method_error != Error::Ok) {
    throw RunError{"cannot load method '" + options.method + "': " + describe(method_error)};
  }
  program.times = {ms_between(load_start, program_end), ms_between(method_start, method_end)};
  set_inputs(program, options.method);  // validates them before the load event
  return program;
}

// Loads the program twice in this process and keeps the second: the first load is the
// cold one (file, allocator and the runtime's code touched for the first time), the second
// the warm one. The first is dropped before the second starts, so the peak resident set
// holds one copy. Returns the kept program; `cold` receives the first load's times.
LoadedProgram load_twice(const ModelSpec& model, const RunnerOptions& options,
                         std::unique_ptr<executorch::runtime::EventTracer> tracer, LoadTimes& cold) {
  cold = load_program(model, options, nullptr).times;
  return load_program(model, options, std::move(tracer));
}

void emit_load(const LoadedProgram& program, const LoadTimes& cold, int model, const std::string& path) {
  int64_t planned = 0;
  for (const int64_t bytes : program.planned_buffer_bytes) planned += bytes;
  JsonLine line("load");
  if (model >= 0) line.add("model", model).add("path", path);
  line.add_ms("ms", cold.total_ms())
      .add_ms("program_ms", cold.program_ms)
      .add_ms("method_ms", cold.method_ms)
      .add_ms("warm_ms", program.times.total_ms())
      .add_ms("warm_program_ms", program.times.program_ms)
      .add_ms("warm_method_ms", program.times.method_ms)
      .add("planned_memory_bytes", planned)
      .add("planned_buffer_bytes", program.planned_buffer_bytes)
      .add("backends", program.backends)
      .add_raw("inputs", inputs_json(program.inputs))
      .add("num_outputs", program.num_outputs)
      .emit();
}

// The clock brackets Module::execute alone; setting the inputs before it and writing the
// JSON line after it stay outside.
double run_once(LoadedProgram& program, const std::string& method, const std::string& what) {
  set_inputs(program, method);
  const auto t0 = Clock::now();
  const auto result = program.module->execute(method);
  const auto t1 = Clock::now();
  if (!result.ok()) throw RunError{"execution failed in " + what + ": " + describe(result.error())};
  return ms_between(t0, t1);
}

void write_output(Module& module, const RunnerOptions& options) {
  const auto output = module.get_output(options.method, 0);
  if (!output.ok()) throw RunError{"cannot read output 0: " + describe(output.error())};
  if (!output->isTensor()) throw RunError{"output 0 is not a tensor; --dump-output writes tensors"};
  const auto& tensor = output->toTensor();
  if (tensor.scalar_type() != ScalarType::Float) {
    throw RunError{std::string("output 0 has dtype ") +
                   executorch::runtime::toString(tensor.scalar_type()) +
                   "; --dump-output writes float32 only"};
  }
  std::vector<int64_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  write_file_atomically(options.dump_output_path, tensor.const_data_ptr<float>(), tensor.nbytes());
  JsonLine("output")
      .add("index", 0)
      .add("path", options.dump_output_path)
      .add("dtype", "float32")
      .add("shape", shape)
      .add("bytes", tensor.nbytes())
      .emit();
}

#if MOBILEBENCH_HAVE_ETDUMP
// The trace holds every execution, warm-up included: `executions` in all, the first
// `warmup` of them warm-up (a reader drops those).
void write_etdump(Module& module, const RunnerOptions& options, size_t executions) {
  auto* generator = static_cast<executorch::etdump::ETDumpGen*>(module.event_tracer());
  const executorch::etdump::ETDumpResult result = generator->get_etdump_data();
  if (result.buf == nullptr || result.size == 0) throw RunError{"the event tracer recorded nothing"};
  try {
    write_file_atomically(options.etdump_path, result.buf, result.size);
  } catch (...) {
    std::free(result.buf);
    throw;
  }
  std::free(result.buf);
  JsonLine("etdump")
      .add("path", options.etdump_path)
      .add("bytes", result.size)
      .add("executions", executions)
      .add("warmup", options.warmup)
      .emit();
}
#endif

struct StopDecision {
  bool stop;
  const char* reason;
};

// After `count` timed runs taking `timed_s` seconds: stop? Order of precedence: the hard
// cap, then the minimum count, the minimum time, and the CI target.
StopDecision should_stop(const RunnerOptions& options, size_t count, double timed_s,
                         const std::vector<double>& sorted) {
  if (count < static_cast<size_t>(options.iterations)) {
    if (count >= static_cast<size_t>(options.max_iterations)) return {true, "max_iterations"};
    return {false, nullptr};
  }
  if (!options.adaptive()) return {true, "iterations"};
  if (count >= static_cast<size_t>(options.max_iterations)) return {true, "max_iterations"};
  if (timed_s < options.min_seconds) return {false, nullptr};
  if (!options.target_rel_ci) return {true, "min_seconds"};
  if (ci_within(summarize_sorted(sorted, kConfidence), *options.target_rel_ci)) {
    return {true, "ci_target"};
  }
  return {false, nullptr};
}

void run_single(const RunnerOptions& options) {
  const ModelSpec& model = options.models.front();
  std::unique_ptr<executorch::runtime::EventTracer> tracer;
#if MOBILEBENCH_HAVE_ETDUMP
  if (!options.etdump_path.empty()) tracer = std::make_unique<executorch::etdump::ETDumpGen>();
#endif
  LoadTimes cold;
  LoadedProgram program = load_twice(model, options, std::move(tracer), cold);
  emit_load(program, cold, -1, model.path);

  // Iterations are numbered across both phases (warm-up 0..W-1, then timed W...), so
  // i 0 is always the cold first run.
  for (int i = 0; i < options.warmup; ++i) {
    const double ms = run_once(program, options.method, "warm-up run " + std::to_string(i));
    JsonLine("iteration").add("i", i).add_ms("ms", ms).add("warmup", true).add("cpu", sched_getcpu()).emit();
  }

  std::vector<double> sorted_ms;  // the timed samples, kept sorted for the stopping rule
  double timed_s = 0.0;
  const char* stop_reason = "iterations";
  for (int i = 0;; ++i) {
    const double ms = run_once(program, options.method, "timed run " + std::to_string(i));
    sorted_ms.insert(std::upper_bound(sorted_ms.begin(), sorted_ms.end(), ms), ms);
    timed_s += ms / 1000.0;
    JsonLine("iteration")
        .add("i", options.warmup + i)
        .add_ms("ms", ms)
        .add("warmup", false)
        .add("cpu", sched_getcpu())
        .emit();
    const StopDecision decision = should_stop(options, sorted_ms.size(), timed_s, sorted_ms);
    if (decision.stop) {
      stop_reason = decision.reason;
      break;
    }
  }
  // Before the output and the trace are written: their buffers are not the benchmark's.
  const std::optional<int64_t> peak_rss = peak_rss_bytes();

  if (!options.dump_output_path.empty()) write_output(*program.module, options);
#if MOBILEBENCH_HAVE_ETDUMP
  if (!options.etdump_path.empty()) {
    write_etdump(*program.module, options, static_cast<size_t>(options.warmup) + sorted_ms.size());
  }
#endif

  emit_summary(sorted_ms, options, stop_reason, timed_s, -1, peak_rss);
}

// Runs `step` for the model at `index`, prefixing any error with which model it was.
template <typename Step>
auto for_model(int index, const ModelSpec& model, Step&& step) -> decltype(step()) {
  const std::string prefix = "model " + std::to_string(index) + " (" + model.path + "): ";
  try {
    return step();
  } catch (const RunError& error) {
    throw RunError{prefix + error.message, index};
  } catch (const UsageError& error) {
    throw UsageError{prefix + error.message};
  }
}

// Two programs resident in one process, executed alternately. With --etdump, model 0
// alone is traced: `--model X --model X --interleave --etdump T` measures what tracing
// costs X, paired. Pair p runs model 0 then
// model 1 when p is even and model 1 then model 0 when p is odd (ABBA...): a drift
// within a pair (a frequency step, a neighbour's burst) favours each order equally
// often, and neither model always runs right after the other's cache footprint. Warm-up
// pairs come first; pair p is iteration i = p of both models.
void run_interleaved(const RunnerOptions& options) {
  constexpr int kModels = 2;
  std::vector<LoadedProgram> programs;
  for (int m = 0; m < kModels; ++m) {
    const ModelSpec& model = options.models[m];
    std::unique_ptr<executorch::runtime::EventTracer> tracer;
#if MOBILEBENCH_HAVE_ETDUMP
    if (m == 0 && !options.etdump_path.empty()) tracer = std::make_unique<executorch::etdump::ETDumpGen>();
#endif
    LoadTimes cold;
    programs.push_back(for_model(m, model, [&] { return load_twice(model, options, std::move(tracer), cold); }));
    emit_load(programs.back(), cold, m, model.path);
  }

  std::vector<std::vector<double>> sorted_ms(kModels);
  std::vector<double> timed_s(kModels, 0.0);
  const int pairs = options.warmup + options.iterations;
  for (int p = 0; p < pairs; ++p) {
    const bool warmup = p < options.warmup;
    const int order[kModels] = {p % 2 == 0 ? 0 : 1, p % 2 == 0 ? 1 : 0};
    for (const int m : order) {
      const std::string what = std::string(warmup ? "warm-up" : "timed") + " pair " + std::to_string(p);
      const double ms =
          for_model(m, options.models[m], [&] { return run_once(programs[m], options.method, what); });
      if (!warmup) {
        sorted_ms[m].insert(std::upper_bound(sorted_ms[m].begin(), sorted_ms[m].end(), ms), ms);
        timed_s[m] += ms / 1000.0;
      }
      JsonLine("iteration")
          .add("model", m)
          .add("pair", p)
          .add("i", p)
          .add_ms("ms", ms)
          .add("warmup", warmup)
          .add("cpu", sched_getcpu())
          .emit();
    }
  }
  // The process's peak, with both programs resident.
  const std::optional<int64_t> peak_rss = peak_rss_bytes();
#if MOBILEBENCH_HAVE_ETDUMP
  if (!options.etdump_path.empty()) write_etdump(*programs[0].module, options, static_cast<size_t>(pairs));
#endif
  for (int m = 0; m < kModels; ++m) emit_summary(sorted_ms[m], options, "iterations", timed_s[m], m, peak_rss);
}

}  // namespace

void print_version() {
  JsonLine("version")
      .add("runner", kRunnerName)
      .add("runner_version", kRunnerVersion)
      .add("executorch_version", kExecutorchVersion)
      .add("executorch_git_version", kExecutorchGitVersion)
      .add("build_type", kBuildType)
      .add("compiler", kCompiler)
      .add("target", std::string(kTargetSystem) + "-" + kTargetProcessor)
      .add("etdump", static_cast<bool>(MOBILEBENCH_HAVE_ETDUMP))
      .emit();
}

void run_benchmark(const RunnerOptions& options) {
  if (!options.etdump_path.empty() && !MOBILEBENCH_HAVE_ETDUMP) {
    throw UsageError{"--etdump needs a runner built with the ExecuTorch event tracer "
                     "(-DMOBILEBENCH_WITH_ETDUMP=ON and an SDK that ships etdump)"};
  }
  if (options.interleave) {
    for (size_t m = 0; m < options.models.size(); ++m) {
      for_model(static_cast<int>(m), options.models[m], [&] { check_model_file(options.models[m].path); });
    }
  } else {
    check_model_file(options.models.front().path);
  }
  if (!options.dump_output_path.empty()) check_writable_destination(options.dump_output_path, "--dump-output");
  if (!options.etdump_path.empty()) check_writable_destination(options.etdump_path, "--etdump");

  // Before anything loads: XNNPACK captures the pool when it initialises a delegate.
  const size_t pool_threads = set_threadpool_size(static_cast<size_t>(options.threads));

  emit_start(options, pool_threads);
  if (options.interleave) {
    run_interleaved(options);
  } else {
    run_single(options);
  }
}

}  // namespace mobilebench
