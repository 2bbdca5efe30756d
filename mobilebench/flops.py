"""FLOPs and parameter counts, fvcore's way, cross-checked with PyTorch's own counter.

What a "flop" is here: **one multiply-add counts as one flop**, fvcore's default
convention and the one the SkipNet, MobileNet and GhostNet papers use when they say
"FLOPs" or "MAdds". A k x k convolution producing an H x W x C_out map from C_in
channels (groups g) costs k*k*(C_in/g)*C_out*H*W; a Linear layer in x out costs in*out.
fvcore also counts, by default, batch norm in eval mode (2 flops per input element:
scale and shift) and adaptive average pooling (1 per input element). Plain average
pooling (``avg_pool2d``) is counted here the same way as adaptive pooling (fvcore's
default skips it), so a model whose adaptive pool is computed as an equivalent plain
pool (SkipNet's skip blocks) keeps the count of the authors' model. Element-wise ops
(activations, residual additions, SE scaling) are not counted; they are reported as
skipped operators with how often they occur.

The cross-check runs the model under ``torch.utils.flop_counter.FlopCounterMode`` and
keeps only convolutions and linear layers (``aten.convolution``, ``aten.addmm``,
``aten.mm``). That counter counts 2 flops per multiply-add, so its number is halved; it
must equal fvcore's conv + linear share, and the rest of fvcore's total is batch norm and
pooling.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.zoo.resolve import ArtifactFile, ProgramFile, ResolvedModel, check_input_size

if TYPE_CHECKING:
    from fvcore.nn import FlopCountAnalysis

# Operators FlopCounterMode reports for convolutions and linear layers.
_CONV_LINEAR_OPS = ("convolution", "addmm", "mm")


@dataclass(frozen=True)
class FlopsReport:
    """Cost of one model at one input size (batch 1). ``flops``: fvcore multiply-adds."""

    model: str
    arch: str
    input_size: int
    params: int
    flops: int
    conv_linear_flops: int  # FlopCounterMode, conv + linear only, multiply-adds
    flops_by_operator: dict[str, int]  # fvcore's split: conv, linear, batch_norm, ...
    flops_by_module: dict[str, int]  # fvcore, every module ("" = whole model)
    skipped_ops: dict[str, int]  # operators fvcore saw but does not count, with counts
    paper_flops: float | None = None
    paper_params: float | None = None
    paper_source: str | None = None
    checkpoint_sha256: str | None = None
    # fvcore's analysis, for its per-module table (module_table).
    analysis: FlopCountAnalysis | None = field(default=None, compare=False, repr=False)

    @property
    def flops_diff_pct(self) -> float | None:
        """(measured - paper) / paper in percent, or None without a paper number."""
        return _diff_pct(self.flops, self.paper_flops)

    @property
    def params_diff_pct(self) -> float | None:
        return _diff_pct(self.params, self.paper_params)

    def modules_to_depth(self, depth: int) -> dict[str, int]:
        """Per-module FLOPs down to ``depth`` (1 = direct children of the model)."""
        return {
            name: flops
            for name, flops in self.flops_by_module.items()
            if name and name.count(".") < depth
        }

    def module_table(self, depth: int) -> str:
        """fvcore's per-module table (``flop_count_table``): parameters (or shapes) and
        FLOPs of every module down to ``depth``."""
        from fvcore.nn import flop_count_table

        if self.analysis is None:
            raise MobilebenchError(f"{self.model}: no fvcore analysis kept for a per-module table")
        return flop_count_table(self.analysis, max_depth=depth)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (no per-module breakdown)."""
        return {
            "model": self.model,
            "arch": self.arch,
            "input_size": self.input_size,
            "params": self.params,
            "flops": self.flops,
            "conv_linear_flops": self.conv_linear_flops,
            "flops_by_operator": dict(self.flops_by_operator),
            "paper_flops": self.paper_flops,
            "flops_diff_pct": _round(self.flops_diff_pct),
            "paper_params": self.paper_params,
            "params_diff_pct": _round(self.params_diff_pct),
            "paper_source": self.paper_source,
            "checkpoint_sha256": self.checkpoint_sha256,
            "skipped_ops": dict(self.skipped_ops),
        }


def _diff_pct(measured: float, paper: float | None) -> float | None:
    return None if paper is None else (measured - paper) / paper * 100.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def count_flops(resolved: ResolvedModel, input_size: int | None = None) -> FlopsReport:
    """Count parameters and FLOPs of a resolved model at batch 1.

    ``input_size`` overrides the resolved model's (checked against the architecture).
    Models from outside the zoo: an import path is counted like a zoo model; a ``.pt2``
    program through its graph module, at the input shape it was exported for (another
    ``input_size`` is an error); a ready ``.pte``/``.onnx`` artifact cannot be counted.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if isinstance(resolved, ArtifactFile):
        raise UsageError(
            f"cannot count FLOPs of a ready artifact ({resolved.source}): FLOPs are counted on the PyTorch "
            "model; give its model card, import path (package.module:callable) or .pt2 program instead"
        )
    if isinstance(resolved, ProgramFile):
        if input_size is not None and input_size != resolved.input_size:
            raise UsageError(
                f"{resolved.name} is a program exported for input {'x'.join(map(str, resolved.input_shape))}; "
                f"it cannot be counted at input size {input_size}"
            )
        size = resolved.input_size
        shape = resolved.input_shape
    else:
        size = check_input_size(resolved.arch, input_size) if input_size is not None else resolved.input_size
        shape = (1, 3, size, size)
    model = resolved.build()
    example = torch.zeros(shape)
    params = sum(p.numel() for p in model.parameters())

    with warnings.catch_warnings():
        # fvcore traces with torch.jit.trace, which warns about Python control flow
        # and deprecation; the count does not depend on any of it.
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis  # its import warns about torch.jit.script
        from fvcore.nn.jit_handles import elementwise_flop_counter

        analysis = FlopCountAnalysis(model, example)
        analysis.set_op_handle("aten::avg_pool2d", elementwise_flop_counter(1, 0))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        try:
            total = int(analysis.total())
            by_operator = {op: int(n) for op, n in analysis.by_operator().items()}
            by_module = {name: int(n) for name, n in analysis.by_module().items()}
            skipped = dict(analysis.unsupported_ops())
        except (RuntimeError, TypeError) as exc:
            raise MobilebenchError(f"fvcore could not trace {resolved.name}: {exc}") from None

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    global_counts = counter.get_flop_counts().get("Global", {})
    two_per_mac = sum(n for op, n in global_counts.items() if getattr(op, "__name__", str(op)).split(".")[-1] in _CONV_LINEAR_OPS)

    paper = resolved.card.paper if resolved.card is not None else None
    return FlopsReport(
        model=resolved.name,
        arch=resolved.arch,
        input_size=size,
        params=params,
        flops=total,
        conv_linear_flops=two_per_mac // 2,
        flops_by_operator=by_operator,
        flops_by_module=by_module,
        skipped_ops={str(k): int(v) for k, v in sorted(skipped.items())},
        paper_flops=paper.flops if paper else None,
        paper_params=paper.params if paper else None,
        paper_source=paper.source if paper else None,
        checkpoint_sha256=resolved.checkpoint_sha256,
        analysis=analysis,
    )
