"""Export models to ExecuTorch (.pte, XNNPACK fp32/int8) and ONNX, parity-checked and cached.

Public API (importing this package does not import torch)::

    from mobilebench.export import ExportOptions, export_model, fixed_input
    from mobilebench.zoo.resolve import resolve_model

    artifact = export_model(resolve_model("skipnet_m"), ExportOptions(runtime="executorch", dtype="int8"))
    artifact.path, artifact.sha256, artifact.provenance["parity"]

- ``options.py``: :class:`ExportOptions`, :class:`Artifact` and the fixed numbers
  (tolerances, opset, calibration sizes).
- ``inputs.py``: :func:`fixed_input` (the parity input, reproducible from C++),
  calibration images.
- ``capture.py``: ``torch.export`` with one-paragraph errors; XNNPACK-friendly rewrites.
- ``executorch_lower.py`` / ``onnx_export.py``: the two exporters.
- ``parity.py``: running artifacts in their runtimes and comparing with eager.
- ``cache.py``: content keys, atomic writes, provenance sidecars.
- ``output.py``: ``--output`` checks and atomic copies.
- ``pipeline.py``: :func:`export_model`, tying the steps together.
"""

from __future__ import annotations

from mobilebench.export.inputs import fixed_input, fixed_input_array, write_fixed_input
from mobilebench.export.options import Artifact, ExportOptions
from mobilebench.export.output import copy_atomic, resolve_output
from mobilebench.export.pipeline import export_model

__all__ = [
    "Artifact",
    "ExportOptions",
    "copy_atomic",
    "export_model",
    "fixed_input",
    "fixed_input_array",
    "resolve_output",
    "write_fixed_input",
]
