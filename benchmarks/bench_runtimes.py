"""Single-thread latency of the runtimes mobilebench exports to, on this machine.

For each model: eager PyTorch, the ExecuTorch Python runtime (XNNPACK) fp32 and int8,
and onnxruntime (CPU provider), all with one thread, on ``fixed_input`` at batch 1.
Prints the median latency and its ratio to eager. Artifacts come from (and go to) the
mobilebench artifact cache, so only the first run exports.

    .venv/bin/python benchmarks/bench_runtimes.py [--models skipnet_m mobilenet_v3_large]
        [--warmup 5] [--iterations 50] [--format table|csv|json]

Latencies are wall-clock per call from Python (``time.perf_counter_ns``), so they
include each runtime's Python binding overhead (tens of microseconds), which is small
against these models' milliseconds. The rounds are interleaved (one call of each
runtime per round) so slow drifts of the machine hit every runtime alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

DEFAULT_MODELS = ("skipnet_m", "mobilenet_v3_large")


@dataclass
class Row:
    model: str
    runtime: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    ratio_to_eager: float
    iterations: int


def _runners(name: str) -> dict[str, Callable[[], object]]:
    """One zero-argument callable per runtime, each running ``name`` once at batch 1."""
    import onnxruntime as ort
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    from mobilebench.export import ExportOptions, export_model, fixed_input
    from mobilebench.toolchain import captured_native_stderr
    from mobilebench.zoo.resolve import resolve_model

    resolved = resolve_model(name)
    x = fixed_input(resolved.input_shape, 0)
    model = resolved.build()
    runners: dict[str, Callable[[], object]] = {}

    def eager() -> object:
        with torch.inference_mode():
            return model(x)

    runners["eager pytorch"] = eager

    with captured_native_stderr():
        portable_lib._unsafe_reset_threadpool(1)
    for dtype in ("fp32", "int8"):
        artifact = export_model(resolved, ExportOptions(runtime="executorch", dtype=dtype))
        with captured_native_stderr():
            method = Runtime.get().load_program(artifact.path).load_method("forward")
        runners[f"executorch xnnpack {dtype}"] = lambda method=method: method.execute([x])

    artifact = export_model(resolved, ExportOptions(runtime="onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(artifact.path), sess_options=options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    runners["onnxruntime cpu fp32"] = lambda: session.run(None, feed)
    return runners


def measure(name: str, warmup: int, iterations: int) -> list[Row]:
    runners = _runners(name)
    samples: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(warmup):
        for run in runners.values():
            run()
    for _ in range(iterations):
        for label, run in runners.items():
            start = time.perf_counter_ns()
            run()
            samples[label].append((time.perf_counter_ns() - start) / 1e6)
    eager_median = statistics.median(samples["eager pytorch"])
    rows = []
    for label, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        median = statistics.median(values)
        rows.append(
            Row(
                name,
                label,
                round(median, 3),
                round(deciles[0], 3),
                round(deciles[-1], 3),
                round(median / eager_median, 3),
                len(values),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    from mobilebench.errors import MobilebenchError

    try:
        rows = [row for name in args.models for row in measure(name, args.warmup, args.iterations)]
    except MobilebenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    if args.format == "json":
        print(json.dumps([asdict(r) for r in rows], indent=2))
    elif args.format == "csv":
        print(",".join(asdict(rows[0])))
        for r in rows:
            print(",".join(str(v) for v in asdict(r).values()))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"single-thread latency, batch 1, {platform.machine()} {platform.processor() or ''}".strip()
        )
        for column in ("model", "runtime", "median ms", "p10 ms", "p90 ms", "x eager", "n"):
            table.add_column(column, justify="left" if column in ("model", "runtime") else "right")
        for r in rows:
            table.add_row(
                r.model,
                r.runtime,
                f"{r.median_ms:.2f}",
                f"{r.p10_ms:.2f}",
                f"{r.p90_ms:.2f}",
                f"{r.ratio_to_eager:.2f}",
                str(r.iterations),
            )
        Console(width=120).print(table)
        print(f"torch {torch.__version__}, {args.warmup} warm-up + {args.iterations} interleaved rounds per model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
