"""Host ONNX runner: ``python -m mobilebench.bench.ort_runner --model X.onnx ...``.

Runs an ONNX model with onnxruntime on the CPU, one intra-op and one inter-op thread by
default, sequential execution, and prints the same JSON lines as the native
``mobilebench_runner`` (one object per line, flushed as it goes):

- ``{"event": "start", "runner": "ort_python", "runner_version", "runtime": "onnxruntime", "runtime_version", ...}``
- ``{"event": "load", "ms": <session creation>}``
- ``{"event": "iteration", "i": 0, "ms": ..., "warmup": true}`` for every run; ``i`` counts
  from 0 over warm-up and timed runs alike, so ``i == 0`` is the cold first run
- ``{"event": "summary", "n": <timed>, "median_ms": ..., ...}``
- ``{"event": "error", "message": ...}`` (exit status 1) on any failure.

Inputs are random (fixed seed) with the model's shapes; dynamic dimensions come from
``--input-shape`` (first input, ``1,3,224,224``) or default to 1. With
``--target-rel-ci`` the runner continues after ``--iterations`` until the 95 % CI of the
median is within that fraction of the median (:func:`mobilebench.bench.stats.ci_is_tight`)
or ``--max-iterations`` (default 10 x ``--iterations``) is reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from mobilebench import __version__

_NUMPY_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must look like 1,3,224,224, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"input shape dimensions must be >= 1, got {text!r}")
    return shape


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mobilebench.bench.ort_runner", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="path of the .onnx file")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--iterations", type=_positive, default=50, help="timed runs (minimum with --target-rel-ci)")
    p.add_argument("--threads", type=_positive, default=1, help="intra-op threads (default 1)")
    p.add_argument(
        "--target-rel-ci", type=float, default=None, help="stop when the median's 95%% CI is within this fraction"
    )
    p.add_argument("--max-iterations", type=_positive, default=None, help="cap on timed runs with --target-rel-ci")
    p.add_argument(
        "--input-shape",
        type=_parse_shape,
        default=None,
        help="shape of the first input, e.g. 1,3,224,224 (or 1x3x224x224)",
    )
    return p


def _inputs(session: Any, first_shape: tuple[int, ...] | None) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    feeds = {}
    for index, meta in enumerate(session.get_inputs()):
        dtype = _NUMPY_DTYPES.get(meta.type)
        if dtype is None:
            raise ValueError(f"input {meta.name!r} has unsupported type {meta.type}")
        if index == 0 and first_shape is not None:
            if len(first_shape) != len(meta.shape):
                raise ValueError(
                    f"--input-shape has {len(first_shape)} dimensions, input {meta.name!r} has {len(meta.shape)}"
                )
            shape = first_shape
        else:
            # Symbolic (str) or unknown (None) dimensions: batch-like, use 1.
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in meta.shape)
        if dtype == "bool":
            feeds[meta.name] = rng.random(shape) < 0.5
        elif dtype.startswith(("int", "uint")):
            feeds[meta.name] = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            feeds[meta.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def run(args: argparse.Namespace) -> None:
    import onnxruntime as ort

    from mobilebench.bench.stats import ci_is_tight, summarize

    _emit(
        "start",
        runner="ort_python",
        runner_version=__version__,
        runtime="onnxruntime",
        runtime_version=ort.__version__,
        model=args.model,
        threads=args.threads,
        warmup=args.warmup,
        iterations=args.iterations,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle spinning of the pool would burn the pinned core between runs for nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    t0 = time.perf_counter()
    session = ort.InferenceSession(args.model, sess_options=options, providers=["CPUExecutionProvider"])
    _emit("load", ms=(time.perf_counter() - t0) * 1000)
    feeds = _inputs(session, args.input_shape)

    max_timed = args.iterations
    if args.target_rel_ci is not None:
        max_timed = args.max_iterations or 10 * args.iterations
    timed: list[float] = []
    next_check = args.iterations
    i = 0
    while True:
        warm = i < args.warmup
        start = time.perf_counter()
        session.run(None, feeds)
        ms = (time.perf_counter() - start) * 1000
        _emit("iteration", i=i, ms=ms, warmup=warm)
        i += 1
        if warm:
            continue
        timed.append(ms)
        if len(timed) >= max_timed:
            break
        if len(timed) >= next_check:
            if args.target_rel_ci is None or ci_is_tight(timed, args.target_rel_ci):
                break
            # Re-check every 5 % more samples: the CI needs sorting and binomial ranks.
            next_check = len(timed) + max(1, len(timed) // 20)
    stats = summarize(timed)
    _emit(
        "summary",
        n=stats.n,
        median_ms=stats.median_ms,
        mean_ms=stats.mean_ms,
        min_ms=stats.min_ms,
        max_ms=stats.max_ms,
        ci_low_ms=stats.ci_low_ms,
        ci_high_ms=stats.ci_high_ms,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.warmup < 0:
        _emit("error", message=f"--warmup must be >= 0, got {args.warmup}")
        return 1
    if args.target_rel_ci is not None and not 0 < args.target_rel_ci < 1:
        _emit("error", message=f"--target-rel-ci must be between 0 and 1, got {args.target_rel_ci}")
        return 1
    try:
        run(args)
    except KeyboardInterrupt:
        _emit("error", message="interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the protocol reports every failure as an event
        _emit("error", message=" ".join(f"{type(exc).__name__}: {exc}".split()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
