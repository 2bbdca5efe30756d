"""ONNX: the dynamo-based ``torch.onnx.export`` into one self-contained file, checked.

The batch dimension is a static 1 unless a dynamic batch is asked for; the weights are
stored inside the ``.onnx`` file (no external-data sidecar: these models are far below
protobuf's 2 GB limit). ``onnx.checker`` (with shape inference) validates the file.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.export.capture import condense_export_error
from mobilebench.export.options import ONNX_OPSET
from mobilebench.toolchain import quiet_toolchain

if TYPE_CHECKING:
    import onnx
    import torch

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"


def convert_to_onnx(program: torch.export.ExportedProgram, *, what: str) -> onnx.ModelProto:
    """A captured ``program`` as an ONNX model, its batch dimension named ``batch``.

    The program comes from :func:`mobilebench.export.capture.capture`, so a model
    torch.export cannot capture fails there, with its reason, instead of falling back to
    the ONNX exporter's less strict capture strategies; a dynamic batch is already part
    of it.
    """
    import torch

    try:
        with quiet_toolchain():
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                external_data=False,
                verbose=False,
                report=False,
            )
            proto = onnx_program.model_proto
    except Exception as exc:  # the exporter raises assorted types; all mean "cannot export"
        raise MobilebenchError(f"torch.onnx.export cannot export {what}: {condense_export_error(exc)}") from None
    _name_batch_dimension(proto)
    return proto


def check_onnx(proto: onnx.ModelProto, *, what: str) -> dict[str, Any]:
    """``onnx.checker`` with shape inference, and one file (no external weights); the
    facts for the provenance: opset, input/output names, ops used."""
    import onnx

    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise MobilebenchError(f"the ONNX file exported for {what} refers to external weight data; expected one file")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise MobilebenchError(f"the ONNX file exported for {what} is invalid: {condense_export_error(exc)}") from None
    ops = Counter(node.op_type for node in proto.graph.node)
    return {
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), ONNX_OPSET),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "nodes": sum(ops.values()),
        "op_counts": dict(sorted(ops.items())),
    }


def serialize_onnx(proto: onnx.ModelProto) -> bytes:
    """The ``.onnx`` file's bytes (weights inside: these models are far below 2 GB)."""
    return proto.SerializeToString()


def _name_batch_dimension(proto: onnx.ModelProto) -> None:
    """Call a symbolic batch dimension ``batch`` (the exporter names it after its
    internal symbol, e.g. ``s77``) wherever it appears; static graphs are left as they are."""
    first = proto.graph.input[0].type.tensor_type.shape.dim[0]
    symbol = first.dim_param
    if not symbol or symbol == BATCH_DIM:
        return
    for info in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = BATCH_DIM
