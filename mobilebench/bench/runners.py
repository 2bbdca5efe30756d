"""Runner adapters: the command line of each benchmark binary and the parser of its output.

An adapter turns a :class:`RunnerRequest` into an argv LIST (the device layer quotes it
for the remote shell) and the runner's captured stdout/stderr into a
:class:`RunnerOutput` with per-iteration samples. Four runners are understood:

``mobilebench_runner``
    Our native runner (``android_app/``). Prints JSON lines: ``start`` (versions),
    ``load`` (ms), one ``iteration`` per run (``i``, ``ms``, ``warmup``), ``summary``,
    or ``error`` (``message``). Warm-up and adaptive stopping happen in the runner.
``ort_python``
    :mod:`mobilebench.bench.ort_runner`, the host ONNX runner; same JSON lines.
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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mobilebench.bench.stats import summarize, summary_stats
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.records import LatencyStats, Sample


@dataclass(frozen=True)
class RunnerRequest:
    """What to run.

    ``iterations`` timed runs after ``warmup`` untimed ones. With ``target_rel_ci`` the
    runner keeps going after ``iterations`` until the 95 % CI of the median is within
    ``±target_rel_ci`` of it (see :func:`mobilebench.bench.stats.ci_is_tight`), up to
    ``max_iterations`` (runner default when None). ``input_shape`` is needed only for
    models with dynamic input dimensions.
    """

    model_path: str
    warmup: int
    iterations: int
    threads: int = 1
    target_rel_ci: float | None = None
    max_iterations: int | None = None
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise UsageError(f"warm-up iterations must be >= 0, got {self.warmup}")
        if self.iterations < 1:
            raise UsageError(f"iterations must be >= 1, got {self.iterations}")
        if self.threads < 1:
            raise UsageError(f"threads must be >= 1, got {self.threads}")
        if self.target_rel_ci is not None and not 0 < self.target_rel_ci < 1:
            raise UsageError(f"target relative CI must be between 0 and 1, got {self.target_rel_ci}")
        if self.max_iterations is not None and self.max_iterations < self.iterations:
            raise UsageError(f"max iterations ({self.max_iterations}) must be >= iterations ({self.iterations})")


@dataclass(frozen=True)
class RunnerOutput:
    """A runner's measurements as parsed from its output.

    ``samples`` holds every iteration the runner reported, warm-up flagged; it is empty
    for summary-only runners, whose aggregates are in ``summary`` (ms unless named
    otherwise). ``notes`` are caveats about how the numbers were obtained; the profile
    stores them with the run's warnings.
    """

    runner_name: str
    samples: list[Sample]
    load_ms: float | None = None
    first_ms: float | None = None
    runner_version: str | None = None
    runtime_version: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def timed_ms(self) -> list[float]:
        return [s.latency_ms for s in self.samples if not s.warmup]

    def stats(self) -> LatencyStats:
        """Statistics of the timed iterations, or of the runner's summary if it has no samples."""
        timed = self.timed_ms
        if timed:
            return summarize(timed, load_ms=self.load_ms, first_ms=self.first_ms)
        s = self.summary
        if all(k in s for k in ("n", "median_ms", "mean_ms", "min_ms", "max_ms")):
            return summary_stats(
                n=s["n"],
                median_ms=s["median_ms"],
                mean_ms=s["mean_ms"],
                min_ms=s["min_ms"],
                max_ms=s["max_ms"],
                p90_ms=s.get("p90_ms"),
                load_ms=self.load_ms,
                first_ms=self.first_ms,
            )
        raise MobilebenchError(f"{self.runner_name} reported no timed iterations")


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

    def _common_flags(self, req: RunnerRequest) -> list[str]:
        argv = ["--model", req.model_path, "--warmup", str(req.warmup), "--iterations", str(req.iterations)]
        argv += ["--threads", str(req.threads)]
        if req.target_rel_ci is not None:
            argv += ["--target-rel-ci", repr(req.target_rel_ci)]
        if req.max_iterations is not None:
            argv += ["--max-iterations", str(req.max_iterations)]
        return argv

    def argv(self, binary: str, req: RunnerRequest) -> list[str]:
        argv = [binary, *self._common_flags(req)]
        if self.name == "ort_python":
            # ``binary`` is the Python interpreter that has onnxruntime and mobilebench.
            argv[1:1] = ["-m", "mobilebench.bench.ort_runner"]
        if req.input_shape is not None:
            argv += ["--input-shape", ",".join(str(d) for d in req.input_shape)]
        return argv

    def parse(self, stdout: str, stderr: str = "", *, request: RunnerRequest | None = None) -> RunnerOutput:
        events = _json_events(self.name, stdout) + _json_events(self.name, stderr, strict=False)
        for event in events:
            if event.get("event") == "error":
                raise MobilebenchError(f"{self.name} failed: {event.get('message') or 'no message'}")
        start = next((e for e in events if e.get("event") == "start"), None)
        if start is None:
            raise _output_error(self.name, "no 'start' event in the output (not a mobilebench runner?)", stdout, stderr)
        load = next((e for e in events if e.get("event") == "load"), None)
        summary = next((e for e in events if e.get("event") == "summary"), None)
        samples: list[Sample] = []
        seen: set[int] = set()
        for event in events:
            if event.get("event") != "iteration":
                continue
            try:
                i, ms, warm = int(event["i"]), float(event["ms"]), bool(event.get("warmup", False))
            except (KeyError, TypeError, ValueError) as exc:
                raise MobilebenchError(f"{self.name}: malformed iteration event {event}") from exc
            if i in seen:
                raise MobilebenchError(f"{self.name}: iteration {i} reported twice")
            seen.add(i)
            samples.append(Sample(i=i, latency_ms=ms, warmup=warm))
        if summary is None:
            raise _output_error(
                self.name,
                f"output ended after {len(samples)} iterations without a summary (runner killed?)",
                stdout,
                stderr,
            )
        if not any(not s.warmup for s in samples):
            raise _output_error(self.name, "no timed iterations in the output", stdout, stderr)
        samples.sort(key=lambda s: s.i)
        runtime_version = (
            start.get("runtime_version") or start.get("executorch_version") or start.get("onnxruntime_version")
        )
        return RunnerOutput(
            runner_name=self.name,
            samples=samples,
            load_ms=_float_or_none(load.get("ms")) if load else None,
            first_ms=samples[0].latency_ms if samples and samples[0].i == 0 else None,
            runner_version=_str_or_none(start.get("runner_version")),
            runtime_version=_str_or_none(runtime_version),
            summary={k: v for k, v in summary.items() if k != "event"},
        )


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


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# --- ExecuTorch executor_runner -----------------------------------------------------------

# The patterns of the stock runners' output are strings: the re module compiles (and
# caches) each on first use, so a run of our own runner does not pay for compiling them.
# Linux/POSIX log line: "I 00:00:00.000123 executorch:file.cpp:123] message".
_ET_POSIX = r"^([DIWEF]) \d+:\d\d:\d\d\.\d+ executorch:[^\]]*\]\s?(.*)$"
# logcat (threadtime): "11-21 10:00:00.123  1234  1234 I ExecuTorch: message".
_ET_LOGCAT = r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+([VDIWEF])\s+ExecuTorch\s*:\s?(.*)$"
# logcat (brief): "I/ExecuTorch( 1234): message".
_ET_LOGCAT_BRIEF = r"^([VDIWEF])/ExecuTorch\s*\(\s*\d+\):\s?(.*)$"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ET_LOADED = rf"Model loaded in ({_NUM}) ms"
_ET_ITERATION = rf"Iteration (\d+) of (\d+): ({_NUM}) ms"
_ET_DONE = rf"Model executed successfully (\d+) time\(s\)(?: in ({_NUM}) ms)?"


def _executorch_messages(text: str) -> list[tuple[str | None, str]]:
    """(level, message) per line, with the log prefix removed (level None: no prefix)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        for pattern in (_ET_POSIX, _ET_LOGCAT, _ET_LOGCAT_BRIEF):
            m = re.match(pattern, line)
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
            if m := re.search(_ET_LOADED, message):
                load_ms = float(m.group(1))
            elif m := re.search(_ET_ITERATION, message):
                iterations.append((int(m.group(2)), float(m.group(3))))
            elif m := re.search(_ET_DONE, message):
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

_ORT_LINE = rf"^\s*(?P<key>[A-Za-z0-9 ]+?)\s*:\s*(?P<value>{_NUM})\s*(?P<unit>s|ms|bytes)?\b"
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
        return [
            binary, "-m", "times", "-r", str(req.iterations),
            "-x", str(req.threads), "-y", "1", "-e", "cpu", "-I", "-s",
            req.model_path,
        ]  # fmt: skip

    def parse(self, stdout: str, stderr: str = "", *, request: RunnerRequest | None = None) -> RunnerOutput:
        values: dict[str, float] = {}
        for line in stdout.splitlines():
            m = re.match(_ORT_LINE, line)
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
        return RunnerOutput(
            runner_name=self.name,
            samples=[],
            load_ms=load_ms,
            first_ms=first_ms,
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
