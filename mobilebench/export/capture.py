"""Graph capture with ``torch.export``: readable failures and XNNPACK-friendly rewrites.

A model ``torch.export`` cannot capture (data-dependent control flow, ``.numpy()``,
shape errors in ``forward``) raises a :class:`MobilebenchError` holding the exporter's
reason in one paragraph and the user code line it points at, not the 200-line trace.

:func:`rewrite_for_xnnpack` replaces two patterns that are exact in eager PyTorch but
that ExecuTorch's XNNPACK partitioner leaves on the portable CPU kernels:

- ``adaptive_avg_pool2d`` whose input size is a multiple of the output size (SkipNet's
  skip blocks pool 112x112 to 28x28 and 14x14) is the same operation as
  ``avg_pool2d`` with kernel = stride = input / output, which XNNPACK runs. (Output 1x1
  is left alone: ExecuTorch already turns it into a delegated global mean.)
- ``hardsigmoid`` decomposes to a clamp and a division by *integer* constants that
  stay outside the delegate as dtype casts; ``relu6(x + 3.0) / 6.0`` computes the same
  values with float scalars and is delegated whole.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.toolchain import quiet_toolchain

if TYPE_CHECKING:
    import torch
    from torch import nn

# Lines of torch.export messages that are advice about torch's own debugging flags.
_BOILERPLATE = re.compile(
    r"^(consider using|for more information|for extended logs|if you suspect|for c\+\+ stack"
    r"|for more debugging help|the error above occurred|the following call raised|"
    r"\(size-like symbols|caused by:)",
    re.IGNORECASE,
)
_USER_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_MAX_REASON_CHARS = 500


def condense_export_error(exc: BaseException) -> str:
    """The first meaningful paragraph of an exporter exception, plus the user code line.

    >>> condense_export_error(RuntimeError("shape '[-1, 7]' is invalid for input of size 192"))
    "RuntimeError: shape '[-1, 7]' is invalid for input of size 192"
    """
    text = str(exc).strip()
    reason_lines: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if reason_lines:
                break
            continue
        if _BOILERPLATE.match(line):
            if reason_lines:
                break
            continue
        reason_lines.append(line)
    reason = " ".join(reason_lines) or "(no message)"
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[: _MAX_REASON_CHARS - 3].rstrip() + "..."
    frames = _USER_FRAME.findall(text)
    where = f" (at {frames[-1][0]}:{frames[-1][1]} in {frames[-1][2]})" if frames else ""
    return f"{type(exc).__name__}: {reason}{where}"


def capture(
    model: nn.Module,
    example: torch.Tensor,
    *,
    dynamic_batch_max: int | None,
    what: str,
) -> torch.export.ExportedProgram:
    """``torch.export.export(model, (example,))`` with a one-paragraph error on failure.

    ``dynamic_batch_max``: ``None`` for a static batch; otherwise the batch dimension
    is symbolic with that upper bound (``0`` = unbounded). ``example`` must then have a
    batch of at least 2 (torch.export specialises sizes 0 and 1).
    """
    import torch

    dynamic_shapes: Any = None
    if dynamic_batch_max is not None:
        batch = torch.export.Dim("batch", min=1, max=dynamic_batch_max or None)
        dynamic_shapes = ({0: batch},)
    try:
        with quiet_toolchain():
            return torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes, strict=False)
    except Exception as exc:  # torch raises many unrelated types here; all mean "cannot capture"
        raise MobilebenchError(
            f"torch.export cannot capture {what}: {condense_export_error(exc)}. "
            "Exportable models avoid data-dependent Python control flow and tensor-to-Python conversions in forward()."
        ) from None


def rewrite_for_xnnpack(gm: torch.fx.GraphModule) -> dict[str, int]:
    """Rewrite ``gm`` (an unlifted ``ExportedProgram.module()``) in place; see the module
    docstring. Returns how many nodes of each kind were rewritten."""
    import torch

    aten = torch.ops.aten
    done: Counter[str] = Counter()
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target is aten.adaptive_avg_pool2d.default:
            kernel = _even_pool_kernel(node)
            if kernel is None:
                continue
            with graph.inserting_before(node):
                pooled = graph.call_function(aten.avg_pool2d.default, (node.args[0], kernel, kernel))
            pooled.meta = dict(node.meta)
            node.replace_all_uses_with(pooled)
            graph.erase_node(node)
            done["adaptive_avg_pool2d -> avg_pool2d"] += 1
        elif node.target is aten.hardsigmoid.default:
            (x,) = node.args
            with graph.inserting_before(node):
                shifted = graph.call_function(aten.add.Tensor, (x, 3.0))
                clamped = graph.call_function(aten.hardtanh.default, (shifted, 0.0, 6.0))
                scaled = graph.call_function(aten.div.Tensor, (clamped, 6.0))
            scaled.meta = dict(node.meta)
            node.replace_all_uses_with(scaled)
            graph.erase_node(node)
            done["hardsigmoid -> relu6(x + 3.0) / 6.0"] += 1
    if done:
        graph.lint()
        gm.recompile()
    return dict(done)


def _even_pool_kernel(node: torch.fx.Node) -> list[int] | None:
    """kernel = stride of the avg_pool2d equal to this adaptive pool, or None."""
    source = node.args[0]
    value = source.meta.get("val") if hasattr(source, "meta") else None
    if value is None or value.dim() != 4:
        return None
    height, width = value.shape[-2:]
    if not (isinstance(height, int) and isinstance(width, int)):
        return None
    out = node.args[1]
    out_h, out_w = (out, out) if isinstance(out, int) else tuple(out)
    if (out_h, out_w) == (1, 1) or not out_h or not out_w:
        return None
    if height % out_h or width % out_w:
        return None
    return [height // out_h, width // out_w]
