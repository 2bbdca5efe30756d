"""Runner adapters: the command line of each benchmark binary and the parser of its output.

An adapter turns a :class:`RunnerRequest` into an argv LIST (the device layer quotes it
for the remote shell) and the runner's captured stdout/stderr into a
:class:`RunnerOutput` with per-iteration samples. Four runners are understood:

``mobilebench_runner``
    Our native runner (``android_app/``), speaking the JSON-lines protocol below. Warm-up
    and adaptive stopping happen in the runner.
``ort_python``
    :mod:`mobilebench.bench.ort_runner`, the host ONNX runner; the same protocol.
``executor_runner``
    ExecuTorch's stock example runner. It has no warm-up: all ``warmup + iterations``
    executions are timed and the first ``warmup`` are flagged as warm-up afterwards (the
    first one is the cold iteration). Builds before ExecuTorch 1.3 print only the total
    time; that becomes ONE sample holding the mean of all executions
    (``averaged_over`` = count), cold one included, and a note saying so.
``onnxruntime_perf_test``
    ONNX Runtime's benchmark tool. It reports aggregates only (mean and percentiles of
    ``-r`` runs after its own single warm-up), so its output has no samples and the
    statistics are taken from its summary, never synthesised into fake samples.

The JSON-lines protocol
-----------------------
One JSON object per line on stdout, each with an ``event``; other lines (a runtime's log
on stderr) are ignored. Durations are milliseconds, memory is bytes. One program:

``start``
    ``runner``, ``runner_version``, the runtime's version (``executorch_version`` or
    ``runtime_version``), ``model`` (path), ``threads``, ``warmup``, ``iterations``, and
    runner-specific settings.
``load``
    ``ms``: the first load of the program in the process (cold: the file, the allocator
    and the runtime's code touched for the first time; ``program_ms`` + ``method_ms`` for
    ExecuTorch, where the method part includes XNNPACK's weight packing). ``warm_ms``: a
    second load of the same file in the same process, after the first was dropped; it
    is the loaded copy that runs. ``planned_memory_bytes``: the sum of the method's
    memory-planned buffers (``planned_buffer_bytes``, one per buffer): the activations
    and I/O ExecuTorch plans *outside* delegates; XNNPACK's own workspace is not in it.
    (ONNX Runtime plans no such arena it reports: absent.)
``iteration``
    ``i`` (0-based over warm-up and timed runs, so ``i`` 0 is the cold first run),
    ``ms``, ``warmup`` (bool); the native runner adds ``cpu``.
``summary``
    ``iterations`` or ``n`` (timed runs), ``median_ms`` and other aggregates of the
    timed runs (the native runner's are described in ``android_app/README.md``) and
    ``peak_rss_bytes``: the process's peak resident set (VmHWM of /proc/self/status) once
    the timed runs are done, before any output or trace is written; null where unknown.
``etdump``
    With ``--etdump``: ``path``, ``bytes``, ``executions`` (every run is traced, warm-up
    included) and ``warmup``; before the summary.
``error``
    ``message`` (one line), ``exit_code``; the stream ends with it.

Interleaved (``--model A --model B --interleave``): both programs are loaded in one
process and executed alternately, ``warmup`` warm-up pairs then ``iterations`` timed
pairs. Pair ``p`` runs A then B when ``p`` is even and B then A when ``p`` is odd (ABBA
...). Alternating within a process protects against drift on every time scale longer
than one pair (frequency steps, thermal drift, a neighbour's bursts), which hits both
programs alike; reversing the order in every other pair cancels what running first or
second in a pair does (the second inherits a cache warmed, or evicted, by the first,
and a drift within the pair favours neither). What it cannot remove is the effect of
two programs being resident at all (a larger footprint than either alone): that is the
same for both and cancels in their ratio, but not in their absolute latencies. Events:

``start``
    ``models`` (the two paths, in order) and ``interleave`` true instead of ``model``;
    ``warmup`` and ``iterations`` count pairs.
``load``
    One per program, in order, with ``model`` (index 0 or 1) and ``path``. Model 1's
    first load is not the process's first (model 0 was loaded before it).
``iteration``
    ``model`` (index), ``pair`` (0-based over warm-up and timed pairs) and ``i`` equal to
    ``pair`` (each model runs once per pair). The stream order is the execution order.
``summary``
    One per program, with ``model``; ``peak_rss_bytes`` is the process's, with both
    programs resident.
``error``
    Also ``model`` when one of the programs failed; the message names it.
``etdump``
    With ``--etdump``: the trace of program 0 alone, so that ``--model X --model X
    --interleave --etdump T`` measures, paired, what tracing costs X.

Each model's samples become one :class:`RunnerOutput` whose samples carry ``pair``: the
sample of A and the sample of B with the same ``pair`` ran back to back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mobilebench.bench.measurement import RunnerRequest
from mobilebench.bench.stats import summarize, summary_stats
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.records import LatencyStats, Sample


@dataclass(frozen=True)
class InterleavedRequest:
    """Two programs in one runner process, executed alternately in ABBA pairs.

    ``warmup`` warm-up pairs, then ``pairs`` timed pairs: each program runs once per pair,
    so each gets ``pairs`` timed samples. Each program gets its own inputs, generated for
    its own input shape (``input_shapes[k]`` only for dynamic dimensions), so programs of
    different input sizes can be compared; the same seed feeds both. A fixed count: the
    caller decides from the paired samples whether to run more pairs.
    """

    model_paths: tuple[str, str]
    warmup: int
    pairs: int
    threads: int = 1
    input_shapes: tuple[tuple[int, ...] | None, tuple[int, ...] | None] = (None, None)

    def __post_init__(self) -> None:
        if len(self.model_paths) != 2 or len(self.input_shapes) != 2:
            raise UsageError(f"an interleaved run takes exactly two programs, got {len(self.model_paths)}")
        if self.warmup < 0:
            raise UsageError(f"warm-up pairs must be >= 0, got {self.warmup}")
        if self.pairs < 1:
            raise UsageError(f"pairs must be >= 1, got {self.pairs}")
        if self.threads < 1:
            raise UsageError(f"threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class TraceFile:
    """The ETDump a traced run wrote: its path on the device, its size, and how many
    executions it holds, of which the first ``warmup`` are warm-up."""

    path: str
    bytes: int
    executions: int
    warmup: int


@dataclass(frozen=True)
class RunnerOutput:
    """A runner's measurements as parsed from its output.

    ``samples`` holds every iteration the runner reported, warm-up flagged; it is empty
    for summary-only runners, whose aggregates are in ``summary`` (ms unless named
    otherwise). ``load_ms`` is the first load of the program in the runner's process,
    ``warm_load_ms`` a second one; ``peak_rss_bytes`` the process's peak resident set;
    ``planned_memory_bytes`` the program's memory-planned buffers (None: not reported);
    ``trace`` the event trace of a traced run (``RunnerRequest.etdump``). ``notes`` are
    caveats about how the numbers were obtained; the profile stores them with the run's
    warnings.
    """

    runner_name: str
    samples: list[Sample]
    load_ms: float | None = None
    first_ms: float | None = None
    runner_version: str | None = None
    runtime_version: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warm_load_ms: float | None = None
    peak_rss_bytes: int | None = None
    planned_memory_bytes: int | None = None
    trace: TraceFile | None = None

    @property
    def timed_ms(self) -> list[float]:
        return [s.latency_ms for s in self.samples if not s.warmup]

    def stats(self) -> LatencyStats:
        """Statistics of the timed iterations, or of the runner's summary if it has no samples."""
        timed = self.timed_ms
        if timed:
            stats = summarize(timed, load_ms=self.load_ms, first_ms=self.first_ms)
            return replace(stats, warm_load_ms=self.warm_load_ms)
        s = self.summary
        if all(k in s for k in ("n", "median_ms", "mean_ms", "min_ms", "max_ms")):
            stats = summary_stats(
                n=s["n"],
                median_ms=s["median_ms"],
                mean_ms=s["mean_ms"],
                min_ms=s["min_ms"],
                max_ms=s["max_ms"],
                p90_ms=s.get("p90_ms"),
                load_ms=self.load_ms,
                first_ms=self.first_ms,
            )
            return replace(stats, warm_load_ms=self.warm_load_ms)
        raise MobilebenchError(f"{self.runner_name} reported no timed iterations")


class RunnerFailed(MobilebenchError):
    """The runner reported an error (its ``error`` event).

    ``model`` is the index of the program that failed in an interleaved run (None for a
    single program, or a failure before either ran); ``partial`` holds what was measured
    before the failure, one :class:`RunnerOutput` per program (samples only, no summary),
    so that a caller can store it.
    """

    def __init__(self, message: str, *, model: int | None = None, partial: Sequence[RunnerOutput] = ()) -> None:
        super().__init__(message)
        self.model = model
        self.partial = tuple(partial)


class RunnerAdapter(Protocol):
    name: str
    runtime: str

    def argv(self, binary: str, req: RunnerRequest) -> list[str]: ...

    def parse(self, stdout: str, stderr: str = "", *, request: RunnerRequest | None = None) -> RunnerOutput: ...


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-300:] if kept else "(no output)"


def _output_error(runner: str, problem: str, stdout: str, stderr: str) -> MobilebenchError:
    return MobilebenchError(f"{runner}: {problem}; last output: {_tail(stderr) if stderr.strip() else _tail(stdout)}")


# --- JSON lines: mobilebench_runner and ort_python ---------------------------------------


@dataclass(frozen=True)
class JsonLinesAdapter:
    """Runners speaking mobilebench's JSON-lines protocol (see the module docstring)."""

    name: str
    runtime: str

    def _prefix(self, binary: str) -> list[str]:
        # For ort_python, ``binary`` is the Python interpreter that has onnxruntime and mobilebench.
        return [binary, "-m", "mobilebench.bench.ort_runner"] if self.name == "ort_python" else [binary]

    def argv(self, binary: str, req: RunnerRequest) -> list[str]:
        argv = [*self._prefix(binary), "--model", req.model_path]
        argv += ["--warmup", str(req.warmup), "--iterations", str(req.iterations), "--threads", str(req.threads)]
        if req.target_rel_ci is not None:
            argv += ["--target-rel-ci", repr(req.target_rel_ci)]
        if req.max_iterations is not None:
            argv += ["--max-iterations", str(req.max_iterations)]
        if req.input_shape is not None:
            argv += ["--input-shape", _shape_arg(req.input_shape)]
        if self.name != "mobilebench_runner" and (req.etdump or req.input_file or req.dump_output):
            raise UsageError(f"{self.name} cannot read an input file or write a trace or outputs; use mobilebench_runner")
        if req.input_file is not None:
            argv += ["--input", req.input_file]
        if req.etdump is not None:
            argv += ["--etdump", req.etdump]
        if req.dump_output is not None:
            argv += ["--dump-output", req.dump_output]
        return argv

    def interleaved_argv(self, binary: str, req: InterleavedRequest) -> list[str]:
        """``--model A [--input-shape ..] --model B [..] --interleave``: an input shape
        belongs to the ``--model`` before it."""
        argv = self._prefix(binary)
        for path, shape in zip(req.model_paths, req.input_shapes, strict=True):
            argv += ["--model", path]
            if shape is not None:
                argv += ["--input-shape", _shape_arg(shape)]
        argv += ["--interleave", "--warmup", str(req.warmup), "--iterations", str(req.pairs)]
        return argv + ["--threads", str(req.threads)]

    def parse(self, stdout: str, stderr: str = "", *, request: RunnerRequest | None = None) -> RunnerOutput:
        events = self._events(stdout, stderr)
        self._raise_reported_error(events, models=None)
        start = self._start(events, stdout, stderr)
        if start.get("interleave"):
            raise MobilebenchError(f"{self.name}: the output is of an interleaved run; parse it with parse_interleaved")
        output = self._output(start, events, None, stdout, stderr)
        trace = next((e for e in events if e.get("event") == "etdump"), None)
        if request is not None and request.etdump is not None and trace is None:
            raise _output_error(self.name, "a traced run ended without its 'etdump' event", stdout, stderr)
        if trace is not None:
            try:
                fields = (str(trace["path"]), int(trace["bytes"]), int(trace["executions"]), int(trace["warmup"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise MobilebenchError(f"{self.name}: malformed etdump event {trace}") from exc
            output = replace(output, trace=TraceFile(*fields))
        return output

    def parse_interleaved(
        self, stdout: str, stderr: str = "", *, request: InterleavedRequest | None = None
    ) -> tuple[RunnerOutput, RunnerOutput]:
        """One :class:`RunnerOutput` per program, in ``--model`` order; samples carry ``pair``."""
        events = self._events(stdout, stderr)
        start = next((e for e in events if e.get("event") == "start"), None)
        models = start.get("models") if start else None
        paths = list(models) if isinstance(models, list) else list(request.model_paths if request else [])
        self._raise_reported_error(events, models=paths)
        start = self._start(events, stdout, stderr)
        if not start.get("interleave") or len(paths) != 2:
            raise _output_error(self.name, "the output is not of an interleaved run of two programs", stdout, stderr)
        outputs = tuple(self._output(start, events, m, stdout, stderr) for m in range(2))
        pairs = [{s.pair for s in out.samples} for out in outputs]
        if pairs[0] != pairs[1]:
            missing = sorted(pairs[0] ^ pairs[1])[:5]
            raise MobilebenchError(f"{self.name}: interleaved output has incomplete pairs (e.g. pair {missing[0]})")
        if request is not None:
            for out in outputs:
                timed, warm = len(out.timed_ms), sum(s.warmup for s in out.samples)
                if (timed, warm) != (request.pairs, request.warmup):
                    raise MobilebenchError(
                        f"{self.name} ran {warm} warm-up and {timed} timed pairs, "
                        f"expected {request.warmup} and {request.pairs}"
                    )
        return outputs[0], outputs[1]

    def _events(self, stdout: str, stderr: str) -> list[dict[str, Any]]:
        return _json_events(self.name, stdout) + _json_events(self.name, stderr, strict=False)

    def _start(self, events: list[dict[str, Any]], stdout: str, stderr: str) -> dict[str, Any]:
        start = next((e for e in events if e.get("event") == "start"), None)
        if start is None:
            raise _output_error(self.name, "no 'start' event in the output (not a mobilebench runner?)", stdout, stderr)
        return start

    def _raise_reported_error(self, events: list[dict[str, Any]], *, models: list[str] | None) -> None:
        error = next((e for e in events if e.get("event") == "error"), None)
        if error is None:
            return
        message = error.get("message") or "no message"
        model = error.get("model")
        model = model if isinstance(model, int) and not isinstance(model, bool) else None
        partial: list[RunnerOutput] = []
        start = next((e for e in events if e.get("event") == "start"), {})
        for m in range(len(models)) if models is not None else [None]:
            samples = self._samples(events, m)
            if samples:
                partial.append(self._assemble(start, events, m, samples, summary={}))
        where = ""
        if model is not None and models is not None and 0 <= model < len(models):
            where = f" (program {model}, {models[model]})"
        raise RunnerFailed(f"{self.name} failed{where}: {message}", model=model, partial=partial)

    def _samples(self, events: list[dict[str, Any]], model: int | None) -> list[Sample]:
        samples: list[Sample] = []
        seen: set[int] = set()
        for event in events:
            if event.get("event") != "iteration" or event.get("model") != model:
                continue
            try:
                i, ms, warm = int(event["i"]), float(event["ms"]), bool(event.get("warmup", False))
                pair = int(event["pair"]) if model is not None else None
            except (KeyError, TypeError, ValueError) as exc:
                raise MobilebenchError(f"{self.name}: malformed iteration event {event}") from exc
            if i in seen:
                raise MobilebenchError(f"{self.name}: iteration {i} reported twice")
            seen.add(i)
            samples.append(Sample(i=i, latency_ms=ms, warmup=warm, pair=pair))
        samples.sort(key=lambda s: s.i)
        return samples

    def _output(
        self, start: dict[str, Any], events: list[dict[str, Any]], model: int | None, stdout: str, stderr: str
    ) -> RunnerOutput:
        samples = self._samples(events, model)
        which = "" if model is None else f" for program {model}"
        summary = next((e for e in events if e.get("event") == "summary" and e.get("model") == model), None)
        if summary is None:
            raise _output_error(
                self.name,
                f"output ended after {len(samples)} iterations{which} without a summary (runner killed?)",
                stdout,
                stderr,
            )
        if not any(not s.warmup for s in samples):
            raise _output_error(self.name, f"no timed iterations{which} in the output", stdout, stderr)
        output = self._assemble(start, events, model, samples, {k: v for k, v in summary.items() if k != "event"})
        if model is not None:
            other = start["models"][1 - model]
            note = (
                f"interleaved with {other} in one process (ABBA pairs); "
                "peak RSS is the process's with both programs resident"
            )
            output = replace(output, notes=[*output.notes, note])
        return output

    def _assemble(
        self,
        start: dict[str, Any],
        events: list[dict[str, Any]],
        model: int | None,
        samples: list[Sample],
        summary: dict[str, Any],
    ) -> RunnerOutput:
        load = next((e for e in events if e.get("event") == "load" and e.get("model") == model), None) or {}
        runtime_version = (
            start.get("runtime_version") or start.get("executorch_version") or start.get("onnxruntime_version")
        )
        return RunnerOutput(
            runner_name=self.name,
            samples=samples,
            load_ms=_float_or_none(load.get("ms")),
            first_ms=samples[0].latency_ms if samples and samples[0].i == 0 else None,
            runner_version=_str_or_none(start.get("runner_version")),
            runtime_version=_str_or_none(runtime_version),
            summary=summary,
            warm_load_ms=_float_or_none(load.get("warm_ms")),
            peak_rss_bytes=_int_or_none(summary.get("peak_rss_bytes")),
            planned_memory_bytes=_int_or_none(load.get("planned_memory_bytes")),
        )


def interleaving_adapter(name: str) -> JsonLinesAdapter:
    """The adapter of runner ``name`` if it can run two programs alternately in one process."""
    adapter = get_adapter(name)
    if not isinstance(adapter, JsonLinesAdapter):
        raise UsageError(
            f"{name} cannot run two programs in one process; use mobilebench_runner (ExecuTorch) "
            "or ort_python (ONNX), or alternate whole runs"
        )
    return adapter


def _shape_arg(shape: tuple[int, ...]) -> str:
    return ",".join(str(d) for d in shape)


def _json_events(runner: str, text: str, *, strict: bool = True) -> list[dict[str, Any]]:
    """JSON objects, one per line. Other lines (runtime logs) are skipped; a line that
    starts like JSON but does not parse is an error in the runner's own stream (stdout)."""
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if strict:
                raise MobilebenchError(f"{runner}: malformed JSON line in its output: {line[:200]}") from None
            continue
        if isinstance(obj, dict) and "event" in obj:
            events.append(obj)
    return events


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# --- ExecuTorch executor_runner -----------------------------------------------------------

# Linux/POSIX log line: "I 00:00:00.000123 executorch:file.cpp:123] message".
_ET_POSIX = re.compile(r"^([DIWEF]) \d+:\d\d:\d\d\.\d+ executorch:[^\]]*\]\s?(.*)$")
# logcat (threadtime): "11-21 10:00:00.123  1234  1234 I ExecuTorch: message".
_ET_LOGCAT = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+([VDIWEF])\s+ExecuTorch\s*:\s?(.*)$")
# logcat (brief): "I/ExecuTorch( 1234): message".
_ET_LOGCAT_BRIEF = re.compile(r"^([VDIWEF])/ExecuTorch\s*\(\s*\d+\):\s?(.*)$")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ET_LOADED = re.compile(rf"Model loaded in ({_NUM}) ms")
_ET_ITERATION = re.compile(rf"Iteration (\d+) of (\d+): ({_NUM}) ms")
_ET_DONE = re.compile(rf"Model executed successfully (\d+) time\(s\)(?: in ({_NUM}) ms)?")


def _executorch_messages(text: str) -> list[tuple[str | None, str]]:
    """(level, message) per line, with the log prefix removed (level None: no prefix)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        for pattern in (_ET_POSIX, _ET_LOGCAT, _ET_LOGCAT_BRIEF):
            m = pattern.match(line)
            if m:
                out.append((m.group(1), m.group(2)))
                break
        else:
            out.append((None, line))
    return out


class ExecutorRunnerAdapter:
    """ExecuTorch's ``executor_runner`` (stdout/stderr on Linux, or ``logcat -s ExecuTorch``)."""

    name = "executor_runner"
    runtime = "executorch"

    def argv(self, binary: str, req: RunnerRequest) -> list[str]:
        if req.target_rel_ci is not None:
            raise UsageError(
                "executor_runner cannot stop adaptively; use mobilebench_runner or a fixed iteration count"
            )
        if req.input_shape is not None:
            raise UsageError("executor_runner takes the input shape from the .pte; do not pass one")
        if req.etdump is not None:
            raise UsageError("traced runs (per-operator profiles) need mobilebench_runner, not executor_runner")
        if req.input_file is not None or req.dump_output is not None:
            raise UsageError("checking a device's outputs needs mobilebench_runner, not executor_runner")
        return [
            binary,
            f"--model_path={req.model_path}",
            f"--num_executions={req.warmup + req.iterations}",
            f"--cpu_threads={req.threads}",
        ]

    def parse(self, stdout: str, stderr: str = "", *, request: RunnerRequest | None = None) -> RunnerOutput:
        messages = _executorch_messages(stdout) + _executorch_messages(stderr)
        load_ms = None
        iterations: list[tuple[int, float]] = []
        done: tuple[int, float | None] | None = None
        errors = []
        for level, message in messages:
            if level in ("E", "F"):
                errors.append(message)
            if m := _ET_LOADED.search(message):
                load_ms = float(m.group(1))
            elif m := _ET_ITERATION.search(message):
                iterations.append((int(m.group(2)), float(m.group(3))))
            elif m := _ET_DONE.search(message):
                done = (int(m.group(1)), float(m.group(2)) if m.group(2) else None)
        if done is None:
            problem = f"failed: {errors[0]}" if errors else "no 'Model executed successfully' line in the output"
            raise _output_error(self.name, problem, stdout, stderr)
        count, total_ms = done
        warmup = request.warmup if request is not None else 0
        if request is not None and count != request.warmup + request.iterations:
            raise MobilebenchError(
                f"{self.name} ran {count} executions, expected {request.warmup + request.iterations}"
            )
        if iterations:
            if len(iterations) != count or any(of != count for of, _ in iterations):
                raise MobilebenchError(
                    f"{self.name}: {len(iterations)} iteration lines for {count} executions (truncated log?)"
                )
            if warmup >= count:
                raise MobilebenchError(f"{self.name}: all {count} executions are warm-up; nothing timed")
            samples = [Sample(i=i, latency_ms=ms, warmup=i < warmup) for i, (_, ms) in enumerate(iterations)]
            return RunnerOutput(
                runner_name=self.name,
                samples=samples,
                load_ms=load_ms,
                first_ms=samples[0].latency_ms,
                summary={"executions": count, "total_ms": total_ms},
            )
        if total_ms is None:
            raise _output_error(
                self.name, "reports no timing (build without per-iteration or total times)", stdout, stderr
            )
        if count < 1:
            raise MobilebenchError(f"{self.name} reports {count} executions")
        mean_ms = total_ms / count
        note = (
            f"{self.name} printed only a total ({total_ms:.3f} ms for {count} executions): one sample is their mean, "
            "cold first iteration and warm-up included; no spread or confidence interval (ExecuTorch < 1.3)"
        )
        return RunnerOutput(
            runner_name=self.name,
            samples=[Sample(i=0, latency_ms=mean_ms, warmup=False, averaged_over=count)],
            load_ms=load_ms,
            first_ms=None,
            summary={"executions": count, "total_ms": total_ms, "mean_ms": mean_ms},
            notes=[note],
        )


# --- onnxruntime_perf_test ----------------------------------------------------------------

_ORT_LINE = re.compile(rf"^\s*(?P<key>[A-Za-z0-9 ]+?)\s*:\s*(?P<value>{_NUM})\s*(?P<unit>s|ms|bytes)?\b")
_ORT_LATENCY_KEYS = {
    "Min": "min_ms",
    "Max": "max_ms",
    "P50": "median_ms",
    "P90": "p90_ms",
    "P95": "p95_ms",
    "P99": "p99_ms",
    "P999": "p999_ms",
}


class OrtPerfTestAdapter:
    """ONNX Runtime's ``onnxruntime_perf_test`` in ``-m times`` mode with ``-s`` statistics.

    It always does exactly one warm-up inference of its own (``First inference time
    cost``, kept as ``first_ms``); ``RunnerRequest.warmup`` cannot change that.
    """

    name = "onnxruntime_perf_test"
    runtime = "onnx"

    def argv(self, binary: str, req: RunnerRequest) -> list[str]:
        if req.target_rel_ci is not None:
            raise UsageError("onnxruntime_perf_test cannot stop adaptively; use a fixed iteration count")
        if req.etdump is not None or req.input_file is not None or req.dump_output is not None:
            raise UsageError("onnxruntime_perf_test cannot read an input file or write a trace or outputs; use mobilebench_runner")
        return [
            binary, "-m", "times", "-r", str(req.iterations),
            "-x", str(req.threads), "-y", "1", "-e", "cpu", "-I", "-s",
            req.model_path,
        ]  # fmt: skip

    def parse(self, stdout: str, stderr: str = "", *, request: RunnerRequest | None = None) -> RunnerOutput:
        values: dict[str, float] = {}
        for line in stdout.splitlines():
            m = _ORT_LINE.match(line)
            if not m:
                continue
            key, value, unit = m.group("key"), float(m.group("value")), m.group("unit")
            if key == "Session creation time cost" and unit == "s":
                values["load_ms"] = value * 1000
            elif key == "First inference time cost" and unit == "ms":
                values["first_ms"] = value
            elif key == "Total inference time cost" and unit == "s":
                values["total_s"] = value
            elif key == "Total inference requests":
                values["n"] = value
            elif key in ("Average inference time cost", "Average inference time cost total") and unit == "ms":
                values["mean_ms"] = value
            elif key == "Peak working set size" and unit == "bytes":
                values["peak_rss_bytes"] = value
            elif key.endswith(" Latency") and unit == "s" and key[: -len(" Latency")] in _ORT_LATENCY_KEYS:
                values[_ORT_LATENCY_KEYS[key[: -len(" Latency")]]] = value * 1000
        if "n" not in values or "mean_ms" not in values:
            raise _output_error(
                self.name, "no 'Total inference requests'/'Average inference time cost' lines", stdout, stderr
            )
        missing = [k for k in ("min_ms", "max_ms", "median_ms") if k not in values]
        if missing:
            raise _output_error(self.name, "no latency percentiles in the output (run it with -s)", stdout, stderr)
        n = int(values.pop("n"))
        if request is not None and n != request.iterations:
            raise MobilebenchError(f"{self.name} ran {n} inferences, expected {request.iterations}")
        load_ms, first_ms = values.pop("load_ms", None), values.pop("first_ms", None)
        peak_rss = values.pop("peak_rss_bytes", None)
        return RunnerOutput(
            runner_name=self.name,
            samples=[],
            load_ms=load_ms,
            first_ms=first_ms,
            peak_rss_bytes=int(peak_rss) if peak_rss is not None else None,
            summary={"n": n, **values},
            notes=[
                f"{self.name} reports aggregates only: statistics are its own (median = its P50), no samples stored"
            ],
        )


ADAPTERS: Mapping[str, RunnerAdapter] = {
    "mobilebench_runner": JsonLinesAdapter(name="mobilebench_runner", runtime="executorch"),
    "ort_python": JsonLinesAdapter(name="ort_python", runtime="onnx"),
    "executor_runner": ExecutorRunnerAdapter(),
    "onnxruntime_perf_test": OrtPerfTestAdapter(),
}


def get_adapter(name: str) -> RunnerAdapter:
    """The adapter for a runner name (see the module docstring for the list)."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UsageError(f"unknown runner {name!r}; known runners: {', '.join(ADAPTERS)}") from None
