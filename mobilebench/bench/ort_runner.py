"""Host ONNX runner: ``python -m mobilebench.bench.ort_runner --model X.onnx ...``.

Runs an ONNX model with onnxruntime on the CPU, one intra-op and one inter-op thread by
default, sequential execution, and prints the JSON-lines protocol of the native
``mobilebench_runner`` (described in :mod:`mobilebench.bench.runners`; one object per
line, flushed as it goes):

- ``{"event": "start", "runner": "ort_python", "runner_version", "runtime": "onnxruntime", "runtime_version", ...}``
- ``{"event": "load", "ms": <first session creation>, "warm_ms": <second>}``: the session
  is created twice in the process and the second one runs (the first is dropped before)
- ``{"event": "iteration", "i": 0, "ms": ..., "warmup": true}`` for every run; ``i`` counts
  from 0 over warm-up and timed runs alike, so ``i == 0`` is the cold first run
- ``{"event": "summary", "n": <timed>, "median_ms": ..., "stop_reason", "peak_rss_bytes"}``; the
  peak resident set is this Python process's (interpreter, numpy and onnxruntime included)
- ``{"event": "error", "message": ...}`` (exit status 1) on any failure.

Inputs are random (fixed seed) with the model's shapes; dynamic dimensions come from
``--input-shape`` (first input, ``1,3,224,224``) or default to 1. With
``--target-rel-ci`` the runner continues after ``--iterations`` until the 95 % CI of the
median is within that fraction of the median (:func:`mobilebench.bench.stats.ci_is_tight`)
or ``--max-iterations`` (default 10 x ``--iterations``) is reached.

``--model A --model B --interleave`` runs two models alternately in ABBA pairs, exactly as
the native runner does (``--warmup`` and ``--iterations`` count pairs; an
``--input-shape`` belongs to the ``--model`` before it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mobilebench import __version__
from mobilebench.bench.stats import ci_is_tight, summarize

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


class ModelFailed(Exception):
    """A failure of one model of an interleaved run (``index`` in ``--model`` order)."""

    def __init__(self, index: int, path: str, cause: Exception) -> None:
        super().__init__(f"model {index} ({path}): {type(cause).__name__}: {cause}")
        self.index = index


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


class _ModelAction(argparse.Action):
    """``--model PATH``, repeatable: a list of ``[path, input_shape]``."""

    def __call__(self, parser: Any, namespace: Any, value: Any, option_string: Any = None) -> None:
        models = list(getattr(namespace, "models", None) or [])
        if models and models[-1][0] is None:  # an --input-shape came first
            models[-1][0] = value
        else:
            models.append([value, None])
        namespace.models = models


class _InputShapeAction(argparse.Action):
    """``--input-shape`` belongs to the ``--model`` before it (given first: to the first)."""

    def __call__(self, parser: Any, namespace: Any, value: Any, option_string: Any = None) -> None:
        models = list(getattr(namespace, "models", None) or [[None, None]])
        models[-1][1] = value
        namespace.models = models


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mobilebench.bench.ort_runner", description=__doc__.splitlines()[0])
    p.add_argument(
        "--model", dest="models", action=_ModelAction, help="path of the .onnx file (twice with --interleave)"
    )
    p.add_argument("--interleave", action="store_true", help="run two models alternately in ABBA pairs")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--iterations", type=_positive, default=50, help="timed runs (minimum with --target-rel-ci)")
    p.add_argument("--threads", type=_positive, default=1, help="intra-op threads (default 1)")
    p.add_argument(
        "--target-rel-ci", type=float, default=None, help="stop when the median's 95%% CI is within this fraction"
    )
    p.add_argument("--max-iterations", type=_positive, default=None, help="cap on timed runs with --target-rel-ci")
    p.add_argument(
        "--input-shape",
        dest="models",
        type=_parse_shape,
        action=_InputShapeAction,
        help="shape of the first input of the --model before it, e.g. 1,3,224,224 (or 1x3x224x224)",
    )
    return p


def _inputs(session: Any, first_shape: tuple[int, ...] | None) -> dict[str, Any]:
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


def peak_rss_bytes() -> int | None:
    """VmHWM of /proc/self/status in bytes (the native runner's definition); None off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # "VmHWM:   12345 kB"
    return None


def _session(path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle spinning of the pool would burn the pinned core between runs for nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def _load_twice(path: str, threads: int) -> tuple[ort.InferenceSession, float, float]:
    """The session, created a second time after the first was dropped; both times in ms."""
    t0 = time.perf_counter()
    first = _session(path, threads)
    cold_ms = (time.perf_counter() - t0) * 1000
    del first
    t0 = time.perf_counter()
    session = _session(path, threads)
    return session, cold_ms, (time.perf_counter() - t0) * 1000


def _time_run(session: ort.InferenceSession, feeds: dict[str, Any]) -> float:
    start = time.perf_counter()
    session.run(None, feeds)
    return (time.perf_counter() - start) * 1000


def _summary(timed: list[float], peak_rss: int | None, *, stop_reason: str, model: int | None = None) -> None:
    stats = summarize(timed)
    _emit(
        "summary",
        **({} if model is None else {"model": model}),
        n=stats.n,
        median_ms=stats.median_ms,
        mean_ms=stats.mean_ms,
        min_ms=stats.min_ms,
        max_ms=stats.max_ms,
        ci_low_ms=stats.ci_low_ms,
        ci_high_ms=stats.ci_high_ms,
        stop_reason=stop_reason,
        peak_rss_bytes=peak_rss,
    )


def _start_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "runner": "ort_python",
        "runner_version": __version__,
        "runtime": "onnxruntime",
        "runtime_version": ort.__version__,
        "threads": args.threads,
        "warmup": args.warmup,
        "iterations": args.iterations,
    }


def run(args: argparse.Namespace) -> None:
    path, input_shape = args.models[0]
    _emit("start", **_start_fields(args), model=path)
    session, cold_ms, warm_ms = _load_twice(path, args.threads)
    _emit("load", ms=cold_ms, warm_ms=warm_ms)
    feeds = _inputs(session, input_shape)

    max_timed = args.iterations
    if args.target_rel_ci is not None:
        max_timed = args.max_iterations or 10 * args.iterations
    timed: list[float] = []
    stop_reason = "iterations"
    i = 0
    while True:
        warm = i < args.warmup
        ms = _time_run(session, feeds)
        _emit("iteration", i=i, ms=ms, warmup=warm)
        i += 1
        if warm:
            continue
        timed.append(ms)
        # The native runner's rule: at least --iterations, then stop at the first run
        # after which the CI is tight, or at the cap.
        if args.target_rel_ci is None:
            if len(timed) >= args.iterations:
                break
        elif len(timed) >= args.iterations and ci_is_tight(timed, args.target_rel_ci):
            stop_reason = "ci_target"
            break
        elif len(timed) >= max_timed:
            stop_reason = "max_iterations"
            break
    _summary(timed, peak_rss_bytes(), stop_reason=stop_reason)


def run_interleaved(args: argparse.Namespace) -> None:
    """Pair p runs model 0 then 1 when p is even, 1 then 0 when odd (see runners.py)."""
    paths = [path for path, _ in args.models]
    _emit("start", **_start_fields(args), models=paths, interleave=True)
    sessions, feeds = [], []
    for index, (path, input_shape) in enumerate(args.models):
        try:
            session, cold_ms, warm_ms = _load_twice(path, args.threads)
            feeds.append(_inputs(session, input_shape))
        except Exception as exc:  # noqa: BLE001 - reported as this model's error event
            raise ModelFailed(index, path, exc) from exc
        sessions.append(session)
        _emit("load", model=index, path=path, ms=cold_ms, warm_ms=warm_ms)
    timed: list[list[float]] = [[], []]
    for pair in range(args.warmup + args.iterations):
        warm = pair < args.warmup
        for index in (0, 1) if pair % 2 == 0 else (1, 0):
            try:
                ms = _time_run(sessions[index], feeds[index])
            except Exception as exc:  # noqa: BLE001
                raise ModelFailed(index, paths[index], exc) from exc
            if not warm:
                timed[index].append(ms)
            _emit("iteration", model=index, pair=pair, i=pair, ms=ms, warmup=warm)
    peak = peak_rss_bytes()
    for index in (0, 1):
        _summary(timed[index], peak, model=index, stop_reason="iterations")


def _usage_problem(args: argparse.Namespace) -> str | None:
    models = args.models or []
    if not models or any(path is None for path, _ in models):
        return "--model PATH is required"
    if args.warmup < 0:
        return f"--warmup must be >= 0, got {args.warmup}"
    if args.target_rel_ci is not None and not 0 < args.target_rel_ci < 1:
        return f"--target-rel-ci must be between 0 and 1, got {args.target_rel_ci}"
    if args.interleave:
        if len(models) != 2:
            return f"--interleave needs exactly two --model files, got {len(models)}"
        if args.target_rel_ci is not None or args.max_iterations is not None:
            return "--interleave runs a fixed number of pairs; --target-rel-ci does not apply"
    elif len(models) > 1:
        return f"--model was given {len(models)} times; add --interleave to run two models alternately"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if problem := _usage_problem(args):
        _emit("error", message=problem)
        return 1
    try:
        if args.interleave:
            run_interleaved(args)
        else:
            run(args)
    except KeyboardInterrupt:
        _emit("error", message="interrupted")
        return 130
    except ModelFailed as exc:
        _emit("error", message=" ".join(str(exc).split()), model=exc.index)
        return 1
    except Exception as exc:  # noqa: BLE001 - the protocol reports every failure as an event
        _emit("error", message=" ".join(f"{type(exc).__name__}: {exc}".split()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
