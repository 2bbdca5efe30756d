"""Run an exported artifact in its real runtime and compare it with eager PyTorch.

- ExecuTorch: ``executorch.runtime`` (the pybind runtime with the XNNPACK backend),
  its thread pool reset to one thread.
- ONNX: onnxruntime's CPU provider with one intra-op and one inter-op thread.

fp32 artifacts must match eager within :data:`~mobilebench.export.options.FP32_RELATIVE_TOLERANCE`
of the output scale (``max|eager|``). int8 artifacts are not held to a bound: the
report gives their top-1 agreement with eager fp32 and the max abs difference.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.export.options import FP32_RELATIVE_TOLERANCE

if TYPE_CHECKING:
    import numpy as np
    import torch


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Send file descriptor 2 to a temp file for the block (the ExecuTorch runtime's C++
    code logs CPU probing and thread-pool resets there). Yields a list that holds the
    captured text once the block ends, for error messages."""
    import tempfile  # with random and shutil, ~5 ms of every profile call, which never gets here

    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def run_executorch(path: Path, inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """First output of the ``forward`` method of a ``.pte`` for each input, one thread."""
    with captured_native_stderr() as native_log:
        try:
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

            portable_lib._unsafe_reset_threadpool(1)
            program = Runtime.get().load_program(Path(path))
            method = program.load_method("forward")
            outputs = [method.execute([x])[0].detach().numpy().copy() for x in inputs]
        except Exception as exc:  # the pybind layer raises RuntimeError/ValueError variants
            failure: Exception | None = exc
        else:
            failure = None
    if failure is not None:
        detail = _last_lines(native_log[0]) if native_log else ""
        raise MobilebenchError(
            f"the ExecuTorch runtime could not run {path.name}: {failure}"
            + (f" (runtime log: {detail})" if detail else "")
        )
    return outputs


def run_onnxruntime(path: Path, inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """First output of an ``.onnx`` for each input on onnxruntime's CPU provider, one thread."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return [np.asarray(session.run(None, {name: x.detach().numpy()})[0]) for x in inputs]
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise MobilebenchError(f"onnxruntime could not run {Path(path).name}: {' '.join(str(exc).split())}") from None


#: Runtime name -> function running an artifact; looked up at call time so tests can
#: substitute one runtime.
RUNNERS = {"executorch": run_executorch, "onnx": run_onnxruntime}
RUNTIME_LABEL = {"executorch": "executorch.runtime (XNNPACK, 1 thread)", "onnx": "onnxruntime CPU (1 thread)"}


def compare(reference: Sequence[np.ndarray], actual: Sequence[np.ndarray], dtype: str) -> dict[str, Any]:
    """Parity numbers of ``actual`` against eager ``reference`` outputs.

    ``relative_max_abs_diff`` is ``max|actual - reference| / max|reference|`` over all
    inputs. fp32 passes when it is at most the tolerance; int8 always "passes" and
    reports ``top1_agreement`` (fraction of inputs whose arg-max class matches).
    """
    import numpy as np

    if len(reference) != len(actual):
        raise MobilebenchError(f"parity: runtime returned {len(actual)} outputs for {len(reference)} inputs")
    for ref, out in zip(reference, actual, strict=True):
        if ref.shape != out.shape:
            raise MobilebenchError(f"parity: output shape {tuple(out.shape)} differs from eager {tuple(ref.shape)}")
    ref_all = np.concatenate([r.astype(np.float64).ravel() for r in reference])
    out_all = np.concatenate([o.astype(np.float64).ravel() for o in actual])
    finite = bool(np.isfinite(out_all).all())
    max_abs_diff = float(np.max(np.abs(out_all - ref_all))) if finite else float("inf")
    scale = float(np.max(np.abs(ref_all)))
    if scale > 0:
        relative = max_abs_diff / scale
    else:
        relative = 0.0 if max_abs_diff == 0 else float("inf")
    result: dict[str, Any] = {
        "inputs": len(reference),
        "max_abs_diff": max_abs_diff,
        "output_scale": scale,
        "relative_max_abs_diff": relative,
    }
    if dtype == "fp32":
        result["tolerance"] = FP32_RELATIVE_TOLERANCE
        result["passed"] = finite and relative <= FP32_RELATIVE_TOLERANCE
    else:
        # One class decision per sample (row), over every input's batch.
        ref_top1 = np.concatenate([r.reshape(r.shape[0], -1).argmax(axis=1) for r in reference])
        out_top1 = np.concatenate([o.reshape(o.shape[0], -1).argmax(axis=1) for o in actual])
        result["top1_agreement"] = float(np.mean(ref_top1 == out_top1))
        result["passed"] = finite
    return result


def check_parity(
    path: Path,
    runtime: str,
    dtype: str,
    inputs: Sequence[torch.Tensor],
    reference: Sequence[np.ndarray],
) -> dict[str, Any]:
    """Run ``path`` in ``runtime`` on ``inputs`` and compare with ``reference``.

    Returns the numbers of :func:`compare` plus the runtime used. Raises
    :class:`MobilebenchError` when the artifact fails the check (fp32 outside the
    tolerance, or non-finite outputs); the caller removes the artifact.
    """
    outputs = RUNNERS[runtime](path, inputs)
    result = {
        "runtime": RUNTIME_LABEL[runtime],
        "reference": "eager PyTorch fp32",
        **compare(reference, outputs, dtype),
    }
    if not result["passed"]:
        if dtype == "fp32":
            raise MobilebenchError(
                f"parity check failed for {path.name}: max abs diff {result['max_abs_diff']:.3g} is "
                f"{result['relative_max_abs_diff']:.3g} of the output scale {result['output_scale']:.3g} "
                f"(tolerance {FP32_RELATIVE_TOLERANCE:g}); the artifact was discarded"
            )
        raise MobilebenchError(
            f"parity check failed for {path.name}: the runtime produced non-finite outputs; the artifact was discarded"
        )
    return result
