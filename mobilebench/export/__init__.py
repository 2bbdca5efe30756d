"""Export models to ExecuTorch (.pte, XNNPACK fp32/int8) and ONNX, parity-checked and cached.

Public API (importing this package does not import torch)::

    from mobilebench.export import ExportOptions, export_model
    from mobilebench.zoo.resolve import resolve_model

    artifact = export_model(resolve_model("skipnet_m"), ExportOptions(runtime="onnx"))
    artifact.path, artifact.sha256, artifact.provenance["parity"]

- ``options.py``: :class:`ExportOptions`, :class:`Artifact` and the fixed numbers
  (tolerances, opset).
- ``calibration.py``: :class:`Calibration`, the inputs of an int8 calibration.
- ``inputs.py``: :func:`fixed_input` (the parity input, reproducible from C++),
  calibration images.
- ``capture.py``: ``torch.export`` with one-paragraph errors; XNNPACK-friendly rewrites.
- ``executorch_lower.py`` / ``onnx_export.py``: the two exporters' stages.
- ``parity.py``: running artifacts in their runtimes and comparing with eager.
- ``cache.py``: content keys, atomic writes, provenance sidecars.
- ``ready.py``: ready ``.pte``/``.onnx`` files, and reading their input signature.
- ``output.py``: ``--output`` checks and atomic copies.
- ``pipeline.py``: :func:`export_model`, its named stages and :class:`ExportHooks`.
"""

from __future__ import annotations

from mobilebench.export.calibration import Calibration, synthetic_calibration
from mobilebench.export.inputs import fixed_input, fixed_input_array, write_fixed_input
from mobilebench.export.options import Artifact, ExportOptions
from mobilebench.export.output import copy_atomic, resolve_output
from mobilebench.export.pipeline import STAGES, ExportHooks, export_model

__all__ = [
    "STAGES",
    "Artifact",
    "Calibration",
    "ExportHooks",
    "ExportOptions",
    "copy_atomic",
    "export_model",
    "fixed_input",
    "fixed_input_array",
    "resolve_output",
    "synthetic_calibration",
    "write_fixed_input",
]
