"""ExecuTorch: int8 PT2E quantization, lowering to XNNPACK, delegation summary, .pte bytes.

The flow is ExecuTorch's documented one for XNNPACK:

- fp32: ``torch.export`` -> ``to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])``
  -> ``to_executorch()``.
- int8: ``prepare_pt2e`` with the XNNPACK quantizer (static, symmetric, per-channel
  int8 weights, per-tensor int8 activations), calibration forwards, ``convert_pt2e``,
  ``torch.export`` of the converted graph, then the same lowering. The partitioner
  takes the quantize/dequantize pairs into the delegate, so XNNPACK runs the int8
  kernels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.export.capture import condense_export_error

if TYPE_CHECKING:
    import torch
    from executorch.exir import EdgeProgramManager

BACKEND = "XnnpackBackend"


#: Graph plumbing outside the delegate that runs no kernel (tuple element access).
PLUMBING_OPS = ("getitem",)


def delegation_summary(edge: EdgeProgramManager) -> dict[str, Any]:
    """How much of a lowered program runs in the XNNPACK delegate, from ExecuTorch's
    :func:`~executorch.devtools.backend_debug.get_delegation_info`.

    ``delegated_op_counts``: operators inside delegate blobs; ``portable_op_counts``:
    operators left outside any delegate, run by ExecuTorch's portable CPU kernels
    (graph plumbing, :data:`PLUMBING_OPS`, is not counted). Operator names are the
    library's (``aten_convolution_default``).
    """
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    breakdown = sorted(info.delegation_by_operator.values(), key=lambda b: b.op_type)
    delegated = {b.op_type: b.delegated for b in breakdown if b.delegated}
    portable = {b.op_type: b.non_delegated for b in breakdown if b.non_delegated and b.op_type not in PLUMBING_OPS}
    return {
        "backend": BACKEND,
        "delegates": info.num_delegated_subgraphs,
        "delegated_ops": info.num_delegated_nodes,
        "delegated_op_counts": delegated,
        "portable_ops": sum(portable.values()),
        "portable_op_counts": portable,
    }


def quantize_int8(graph_module: torch.fx.GraphModule, calibration: Iterable[torch.Tensor]) -> torch.fx.GraphModule:
    """Static int8 PT2E quantization for XNNPACK, calibrated on the ``calibration`` batches.

    ``graph_module`` is ``torch.export.export(...).module()``; the result is the
    converted (quantize/dequantize annotated) module, to be exported again.
    """
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(graph_module, quantizer)
    seen = 0
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
            seen += 1
    if seen == 0:
        raise MobilebenchError("int8 calibration got no inputs")
    return convert_pt2e(prepared)


def lower_to_xnnpack(program: torch.export.ExportedProgram, *, etrecord: bool = False) -> EdgeProgramManager:
    """``to_edge_transform_and_lower`` with the XNNPACK partitioner (``etrecord``: also
    record the edge graph for an ETRecord, which :func:`serialize` then returns)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()], generate_etrecord=etrecord)
    except Exception as exc:  # the lowering stack raises assorted internal types
        raise MobilebenchError(
            f"ExecuTorch could not lower the model to XNNPACK: {condense_export_error(exc)}"
        ) from None


def serialize(edge: EdgeProgramManager, *, etrecord: bool = False) -> tuple[bytes, Any]:
    """The ``.pte`` flatbuffer of a lowered program, and its ETRecord (``etrecord``: the
    lowering recorded one) or None."""
    program = edge.to_executorch()
    return bytes(program.buffer), program.get_etrecord() if etrecord else None
