"""What an export is asked to produce (:class:`ExportOptions`) and what it returns
(:class:`Artifact`), plus the fixed numbers every export uses.

This module does not import torch, so the CLI can parse options cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mobilebench.errors import UsageError

if TYPE_CHECKING:
    from mobilebench.export.calibration import Calibration

Runtime = Literal["executorch", "onnx"]
Dtype = Literal["fp32", "int8"]

RUNTIMES: tuple[str, ...] = ("executorch", "onnx")
DTYPES: tuple[str, ...] = ("fp32", "int8")

#: File suffix of each runtime's artifact.
ARTIFACT_SUFFIX: dict[str, str] = {"executorch": ".pte", "onnx": ".onnx"}

#: fp32 parity: ``max|artifact - eager| / max|eager|`` must not exceed this.
FP32_RELATIVE_TOLERANCE = 1e-4

#: ONNX opset the dynamo exporter targets (18 is the oldest the issue allows and the
#: one older on-device onnxruntime builds still read).
ONNX_OPSET = 18

#: Upper bound of the batch dimension of a dynamic-batch ExecuTorch program. ExecuTorch
#: plans its memory for the largest shape, so this is kept small (phones).
EXECUTORCH_MAX_BATCH = 8

#: int8 parity compares with eager fp32 on this many fixed inputs (seeds 0..n-1).
INT8_PARITY_INPUTS = 8


@dataclass(frozen=True)
class ExportOptions:
    """How to export a model.

    ``calibration``: the inputs calibrating int8 activations
    (:class:`~mobilebench.export.calibration.Calibration`); only with ``dtype="int8"``.
    Without one, a randomly initialised zoo model is calibrated on synthetic inputs
    (there are no trained weights whose activations real images would show) and any
    other model is refused.
    ``dynamic_batch``: leave the batch dimension symbolic (ONNX: unbounded;
    ExecuTorch: 1..:data:`EXECUTORCH_MAX_BATCH`); the default is a static batch of 1.
    ``etrecord`` (ExecuTorch): also keep the ETRecord of the lowering next to the
    artifact, ExecuTorch's record of the edge graph a traced run is read against
    (:mod:`mobilebench.bench.per_op`). The .pte bytes are the same with or without it;
    an artifact cached without one is exported again to make it.
    """

    runtime: Runtime = "executorch"
    dtype: Dtype = "fp32"
    dynamic_batch: bool = False
    calibration: Calibration | None = None
    etrecord: bool = False

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}")
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if self.dtype == "int8" and self.runtime != "executorch":
            raise UsageError("int8 export is implemented for the executorch runtime only; use --runtime executorch")
        if self.calibration is not None and self.dtype != "int8":
            raise UsageError("calibration only applies to int8 exports; add --dtype int8")
        if self.etrecord and self.runtime != "executorch":
            raise UsageError("an ETRecord records an ExecuTorch lowering; it needs --runtime executorch")


@dataclass(frozen=True)
class Artifact:
    """An exported, parity-checked model file in the artifact cache.

    ``input_shape`` is the shape the artifact was checked with (batch 1, NCHW);
    ``provenance`` is the content of the sidecar JSON next to ``path`` (hashes,
    versions, parity numbers, delegation, calibration, weights source);
    ``cached`` tells whether this call found it in the cache instead of exporting;
    ``etrecord_path`` is the ETRecord of its lowering, when one was kept
    (``ExportOptions.etrecord``).
    """

    path: Path
    sha256: str
    runtime: str
    dtype: str
    input_shape: tuple[int, ...]
    provenance: dict[str, Any]
    cached: bool
    etrecord_path: Path | None = None
