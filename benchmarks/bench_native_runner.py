"""How fast is the native runner, against ExecuTorch's Python runtime and onnxruntime?

For each model (default: skipnet_m, mobilenet_v3_large), on ONE pinned core of this
machine, one thread everywhere:

- native: ``android_app/build/host/mobilebench_runner --threads 1`` under ``taskset -c CPU``
  (its own median of ``--iterations`` timed runs after ``--warmup``);
- python: ``executorch.runtime`` in this process (pinned with sched_setaffinity, its
  thread pool reset to 1), median of the same number of ``Method.execute`` calls; this
  includes Python's per-call overhead (input copy, output tensor wrapping);
- onnxruntime: an ``InferenceSession`` on the ONNX export (intra/inter-op threads 1,
  sequential execution, all graph optimisations), median of ``session.run`` calls.

All three use the same input (``mobilebench.export.fixed_input(shape, 0)``). Reported:
medians, the ratios native/python and native/onnxruntime from this one run, and the
fraction of the core's peak fp32 multiply-add rate the native runner achieves:

    achieved = fvcore MACs / native median seconds
    peak     = MACs per cycle (from /proc/cpuinfo flags) x clock (see peak_mac_rate)

Usage: .venv/bin/python benchmarks/bench_native_runner.py [--cpu N] [--models a,b]
       [--warmup 10] [--iterations 50] [--json]
Build the runner first (`make runner`). Export artifacts come from the artifact cache.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mobilebench.errors import MobilebenchError
from mobilebench.paths import project_root

RUNNER = project_root() / "android_app" / "build" / "host" / "mobilebench_runner"


@dataclass(frozen=True)
class PeakRate:
    """Peak fp32 multiply-adds per second of one core, and how it was derived."""

    macs_per_cycle: int
    clock_ghz: float
    basis: str

    @property
    def gmacs(self) -> float:
        return self.macs_per_cycle * self.clock_ghz


@dataclass(frozen=True)
class ModelResult:
    model: str
    macs: int  # fvcore count: one multiply-add = one flop
    conv_linear_macs: int
    native_ms: float
    python_ms: float
    ort_ms: float
    native_load_ms: float

    @property
    def native_vs_python(self) -> float:
        return self.native_ms / self.python_ms

    @property
    def native_vs_ort(self) -> float:
        return self.native_ms / self.ort_ms

    def achieved_gmacs(self) -> float:
        return self.macs / (self.native_ms / 1000) / 1e9


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def clock_ghz(cpu: int) -> tuple[float, str]:
    """The core's clock: cpufreq's maximum if the kernel exposes it, else /proc/cpuinfo's
    "cpu MHz" (on a VM, the host's nominal/TSC rate; turbo may run faster)."""
    max_freq = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq")
    if max_freq.exists():
        return int(max_freq.read_text()) / 1e6, f"cpufreq cpuinfo_max_freq of cpu{cpu}"
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.M)]
    if not mhz:
        raise MobilebenchError("cannot tell the CPU clock: no cpufreq and no 'cpu MHz' in /proc/cpuinfo")
    return max(mhz) / 1000, "/proc/cpuinfo 'cpu MHz' (nominal; no cpufreq in this VM)"


def peak_mac_rate(cpu: int) -> PeakRate:
    """Assumes two FMA units per core, the case for recent Xeon/Core parts (some Xeon
    SKUs have one 512-bit FMA unit, which would halve the AVX-512 figure): AVX-512F =
    2 x 16 fp32 lanes = 32 MAC/cycle, AVX2+FMA = 2 x 8 = 16, otherwise SSE 2 x 4 = 8
    (separate multiply and add)."""
    flags = cpu_flags()
    if "avx512f" in flags:
        per_cycle, isa = 32, "avx512f: 2 FMA units x 16 fp32 lanes"
    elif {"avx2", "fma"} <= flags:
        per_cycle, isa = 16, "avx2+fma: 2 FMA units x 8 fp32 lanes"
    else:
        per_cycle, isa = 8, "sse: 4 lanes x (1 mul + 1 add port)"
    ghz, clock_basis = clock_ghz(cpu)
    return PeakRate(per_cycle, ghz, f"{isa} = {per_cycle} MAC/cycle; clock {ghz:.3f} GHz from {clock_basis}")


def median_ms_of(call, warmup: int, iterations: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def run_native(pte: Path, cpu: int, warmup: int, iterations: int) -> tuple[float, float]:
    if not RUNNER.exists():
        raise MobilebenchError(f"{RUNNER} is missing; run `make runner` first")
    argv = ["taskset", "-c", str(cpu), str(RUNNER), "--model", str(pte), "--threads", "1",
            "--warmup", str(warmup), "--iterations", str(iterations)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    if proc.returncode != 0:
        raise MobilebenchError(f"runner failed: {events[-1] if events else proc.stderr[-300:]}")
    summary = next(e for e in events if e["event"] == "summary")
    load = next(e for e in events if e["event"] == "load")
    return summary["median_ms"], load["ms"]


def run_python_runtime(pte: Path, x, warmup: int, iterations: int) -> float:
    from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count, _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    _unsafe_reset_threadpool(1)
    assert _threadpool_get_thread_count() == 1
    method = Runtime.get().load_program(pte).load_method("forward")
    return median_ms_of(lambda: method.execute((x,)), warmup, iterations)


def run_onnxruntime(onnx_path: Path, x, warmup: int, iterations: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return median_ms_of(lambda: session.run(None, feed), warmup, iterations)


@dataclass(frozen=True)
class PreparedModel:
    name: str
    pte: Path
    onnx: Path
    macs: int
    conv_linear_macs: int
    input_shape: tuple[int, ...]


def prepare_model(name: str) -> PreparedModel:
    """Exports (or finds in the artifact cache) and counts; done before pinning."""
    from mobilebench.export import ExportOptions, export_model
    from mobilebench.flops import count_flops
    from mobilebench.zoo.resolve import resolve_model

    resolved = resolve_model(name)
    pte = export_model(resolved, ExportOptions(runtime="executorch", dtype="fp32")).path
    onnx_path = export_model(resolved, ExportOptions(runtime="onnx", dtype="fp32")).path
    flops = count_flops(resolved)
    return PreparedModel(name, Path(pte), Path(onnx_path), flops.flops, flops.conv_linear_flops, resolved.input_shape)


def bench_model(model: PreparedModel, cpu: int, warmup: int, iterations: int) -> ModelResult:
    from mobilebench.export import fixed_input

    x = fixed_input(model.input_shape, seed=0)
    native_ms, load_ms = run_native(model.pte, cpu, warmup, iterations)
    python_ms = run_python_runtime(model.pte, x, warmup, iterations)
    ort_ms = run_onnxruntime(model.onnx, x, warmup, iterations)
    return ModelResult(model.name, model.macs, model.conv_linear_macs, native_ms, python_ms, ort_ms, load_ms)


def report(results: list[ModelResult], peak: PeakRate, cpu: int, warmup: int, iterations: int) -> str:
    lines = [
        f"pinned to cpu{cpu}, 1 thread, {warmup} warm-up + {iterations} timed runs each, median latency",
        f"peak: {peak.gmacs:.1f} GMAC/s ({peak.basis})",
        "",
        f"{'model':<20}{'MMACs':>8}{'native ms':>11}{'python ms':>11}{'ort ms':>9}"
        f"{'nat/py':>8}{'nat/ort':>9}{'GMAC/s':>8}{'% peak':>8}",
    ]
    for r in results:
        achieved = r.achieved_gmacs()
        lines.append(
            f"{r.model:<20}{r.macs / 1e6:>8.1f}{r.native_ms:>11.2f}{r.python_ms:>11.2f}{r.ort_ms:>9.2f}"
            f"{r.native_vs_python:>8.2f}{r.native_vs_ort:>9.2f}{achieved:>8.1f}{100 * achieved / peak.gmacs:>7.1f}%"
        )
    lines.append("")
    lines.append("nat/py, nat/ort: native median / other median (below 1 = native faster); one run, not averaged.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    allowed = sorted(os.sched_getaffinity(0))
    parser.add_argument("--cpu", type=int, default=allowed[-1], help="core to pin to (default: the last allowed)")
    parser.add_argument("--models", default="skipnet_m,mobilenet_v3_large")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.cpu not in allowed:
        parser.error(f"--cpu {args.cpu} is not among the allowed CPUs {allowed}")
    try:
        peak = peak_mac_rate(args.cpu)
        models = [prepare_model(name) for name in args.models.split(",")]
        os.sched_setaffinity(0, {args.cpu})  # the in-process runtimes run on the same core
        results = [bench_model(m, args.cpu, args.warmup, args.iterations) for m in models]
    except MobilebenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"cpu": args.cpu, "peak": asdict(peak), "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(report(results, peak, args.cpu, args.warmup, args.iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
