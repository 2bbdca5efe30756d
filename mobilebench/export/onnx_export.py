"""ONNX: the dynamo-based ``torch.onnx.export`` into one self-contained file, checked.

The batch dimension is a static 1 unless a dynamic batch is asked for; the weights are
stored inside the ``.onnx`` file (no external-data sidecar: these models are far below
protobuf's 2 GB limit). ``onnx.checker`` (with shape inference) validates the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.export.capture import condense_export_error, quiet_toolchain
from mobilebench.export.options import ONNX_OPSET

if TYPE_CHECKING:
    import torch
    from torch import nn

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    destination: Path,
    *,
    dynamic_batch: bool,
    what: str,
) -> dict[str, Any]:
    """Write ``model`` as ONNX to ``destination`` and check it.

    ``example`` must have batch 2 when ``dynamic_batch`` (torch.export specialises 1).
    Returns facts for the provenance: opset, input/output names, node counts per op.
    """
    import onnx
    import torch

    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1)},)
    try:
        with quiet_toolchain():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                verbose=False,
                report=False,
            )
            program.save(destination, external_data=False)
    except Exception as exc:  # the exporter raises assorted types; all mean "cannot export"
        raise MobilebenchError(f"torch.onnx.export cannot export {what}: {condense_export_error(exc)}") from None

    try:
        onnx.checker.check_model(str(destination), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise MobilebenchError(f"the ONNX file exported for {what} is invalid: {condense_export_error(exc)}") from None
    proto = onnx.load(str(destination), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise MobilebenchError(f"the ONNX file exported for {what} refers to external weight data; expected one file")
    ops = Counter(node.op_type for node in proto.graph.node)
    return {
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), ONNX_OPSET),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "nodes": sum(ops.values()),
        "op_counts": dict(sorted(ops.items())),
    }
