"""Run an exported artifact in its real runtime and compare it with eager PyTorch.

- ExecuTorch: ``executorch.runtime`` (the pybind runtime with the XNNPACK backend),
  its thread pool reset to one thread.
- ONNX: onnxruntime's CPU provider with one intra-op and one inter-op thread.

Both take the artifact as a file or as its bytes (an export checks its artifact before
writing it). fp32 artifacts must match eager within
:data:`~mobilebench.export.options.FP32_RELATIVE_TOLERANCE` of the output scale
(``max|eager|``). int8 artifacts are not held to a bound: the report gives their top-1
agreement with eager fp32 and the max abs difference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.export.options import FP32_RELATIVE_TOLERANCE
from mobilebench.toolchain import native_errors, quiet_import

if TYPE_CHECKING:
    import numpy as np
    import torch

Artifact = Path | bytes


def _name(artifact: Artifact, what: str) -> str:
    return Path(artifact).name if isinstance(artifact, Path) else what


class ExecutorchSession:
    """A ``.pte`` loaded once into ``executorch.runtime`` (XNNPACK, one thread);
    calling it runs ``forward`` on one input and returns the first output."""

    def __init__(self, artifact: Artifact, *, what: str = "the .pte") -> None:
        portable_lib = quiet_import("executorch.extension.pybindings.portable_lib")
        Runtime = quiet_import("executorch.runtime").Runtime  # noqa: N806 - the library's class

        self.what = _name(artifact, what)
        with self._native_log():
            portable_lib._unsafe_reset_threadpool(1)
            self._method = Runtime.get().load_program(artifact).load_method("forward")

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        with self._native_log():
            return self._method.execute([x])[0].detach().numpy().copy()

    def _native_log(self) -> contextlib.AbstractContextManager[None]:
        """The runtime's C++ log goes to a temp file; a failure becomes one line with its tail."""
        return native_errors(lambda exc: f"the ExecuTorch runtime could not run {self.what}: {exc}")


class OnnxSession:
    """An ``.onnx`` loaded once into onnxruntime's CPU provider (one intra-op and one
    inter-op thread); calling it runs one input and returns the first output."""

    def __init__(self, artifact: Artifact, *, what: str = "the .onnx") -> None:
        import onnxruntime as ort

        self.what = _name(artifact, what)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        model = artifact if isinstance(artifact, bytes) else str(artifact)
        with self._errors():
            self._session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
            self._input = self._session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        import numpy as np

        with self._errors():
            return np.asarray(self._session.run(None, {self._input: x.detach().numpy()})[0])

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise MobilebenchError(f"onnxruntime could not run {self.what}: {' '.join(str(exc).split())}") from None


#: Runtime name -> the session class that runs its artifacts.
SESSIONS = {"executorch": ExecutorchSession, "onnx": OnnxSession}


def run_executorch(artifact: Artifact, inputs: Sequence[torch.Tensor], *, what: str = "the .pte") -> list[np.ndarray]:
    """First output of the ``forward`` method of a ``.pte`` for each input, one thread."""
    session = ExecutorchSession(artifact, what=what)
    return [session(x) for x in inputs]


def run_onnxruntime(artifact: Artifact, inputs: Sequence[torch.Tensor], *, what: str = "the .onnx") -> list[np.ndarray]:
    """First output of an ``.onnx`` for each input on onnxruntime's CPU provider, one thread."""
    session = OnnxSession(artifact, what=what)
    return [session(x) for x in inputs]


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
    artifact: bytes,
    runtime: str,
    dtype: str,
    inputs: Sequence[torch.Tensor],
    reference: Sequence[np.ndarray],
    *,
    what: str,
) -> dict[str, Any]:
    """Run the ``artifact`` bytes in ``runtime`` on ``inputs`` and compare with ``reference``.

    Returns the numbers of :func:`compare` plus the runtime used. Raises
    :class:`MobilebenchError` when the artifact fails the check (fp32 outside the
    tolerance, or non-finite outputs), before anything is written.
    """
    outputs = RUNNERS[runtime](artifact, inputs, what=what)
    result = {
        "runtime": RUNTIME_LABEL[runtime],
        "reference": "eager PyTorch fp32",
        **compare(reference, outputs, dtype),
    }
    if not result["passed"]:
        if dtype == "fp32":
            raise MobilebenchError(
                f"parity check failed for {what}: max abs diff {result['max_abs_diff']:.3g} is "
                f"{result['relative_max_abs_diff']:.3g} of the output scale {result['output_scale']:.3g} "
                f"(tolerance {FP32_RELATIVE_TOLERANCE:g}); the artifact was discarded"
            )
        raise MobilebenchError(
            f"parity check failed for {what}: the runtime produced non-finite outputs; the artifact was discarded"
        )
    return result
