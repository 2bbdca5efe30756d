"""ExecuTorch: int8 PT2E quantization, lowering to XNNPACK, delegation report, .pte bytes.

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

import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError

if TYPE_CHECKING:
    import torch
    from executorch.exir import EdgeProgramManager

BACKEND = "XnnpackBackend"


@dataclass
class Delegation:
    """How much of a lowered program runs in the XNNPACK delegate.

    ``delegated_ops`` counts the edge-dialect operators inside delegate blobs;
    ``portable_ops`` lists, with counts, the operators left outside any delegate
    (run by ExecuTorch's portable CPU kernels). Graph plumbing (``getitem``) is not
    counted on either side.
    """

    backend: str
    delegates: int
    delegated_ops: int
    delegated_op_counts: dict[str, int] = field(default_factory=dict)
    portable_ops: int = 0
    portable_op_counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _op_name(target: Any) -> str:
    return getattr(target, "__name__", None) or str(target)


def delegation_summary(edge: EdgeProgramManager) -> Delegation:
    """Count delegated and portable operators of a lowered edge program."""
    graph_module = edge.exported_program().graph_module
    delegated: Counter[str] = Counter()
    portable: Counter[str] = Counter()
    delegates = 0
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        if _op_name(node.target) == "executorch_call_delegate":
            delegates += 1
            lowered = getattr(graph_module, node.args[0].target)
            for inner in lowered.original_module.graph.nodes:
                if inner.op == "call_function" and inner.target is not operator.getitem:
                    delegated[_op_name(inner.target)] += 1
        else:
            portable[_op_name(node.target)] += 1
    return Delegation(
        backend=BACKEND,
        delegates=delegates,
        delegated_ops=sum(delegated.values()),
        delegated_op_counts=dict(sorted(delegated.items())),
        portable_ops=sum(portable.values()),
        portable_op_counts=dict(sorted(portable.items())),
    )


def quantize_int8(
    graph_module: torch.fx.GraphModule,
    calibration: Iterable[torch.Tensor],
    *,
    on_batch: Callable[[], None] = lambda: None,
) -> torch.fx.GraphModule:
    """Static int8 PT2E quantization for XNNPACK, calibrated on ``calibration``.

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
            on_batch()
    if seen == 0:
        raise MobilebenchError("int8 calibration got no inputs")
    return convert_pt2e(prepared)


def lower_to_xnnpack(program: torch.export.ExportedProgram) -> EdgeProgramManager:
    """``to_edge_transform_and_lower`` with the XNNPACK partitioner."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    except Exception as exc:  # the lowering stack raises assorted internal types
        from mobilebench.export.capture import condense_export_error

        raise MobilebenchError(
            f"ExecuTorch could not lower the model to XNNPACK: {condense_export_error(exc)}"
        ) from None


def serialize(edge: EdgeProgramManager) -> bytes:
    """The ``.pte`` flatbuffer of a lowered program."""
    return bytes(edge.to_executorch().buffer)
