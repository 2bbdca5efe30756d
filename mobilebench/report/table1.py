"""The paper's Table 1: cost (fvcore FLOPs, parameters, each against the paper's number)
and the accuracy the model card quotes, with its source, one row per model.

The costs come from :func:`mobilebench.flops.count_flops`; ``flops`` follow fvcore's
convention (one multiply-add = one flop). ``mobilebench flops --output`` writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mobilebench.flops import FlopsReport
from mobilebench.zoo.resolve import ResolvedModel

TABLE1_COLUMNS = (
    "model", "arch", "input_size", "params", "flops", "conv_linear_flops",
    "paper_params", "params_diff_pct", "paper_flops", "flops_diff_pct", "paper_source",
    "top1", "top5", "accuracy_dataset", "accuracy_source", "checkpoint_sha256",
)


def table1_rows(reports: Sequence[FlopsReport], resolved: Sequence[ResolvedModel]) -> list[dict[str, object]]:
    """Rows of Table 1, one per model (``reports[i]`` counts ``resolved[i]``)."""
    rows = []
    for report, model in zip(reports, resolved, strict=True):
        accuracy = model.card.accuracy if model.card is not None else None
        row = {k: v for k, v in report.as_dict().items() if k in TABLE1_COLUMNS}
        row.update(
            top1=accuracy.top1 if accuracy else None,
            top5=accuracy.top5 if accuracy else None,
            accuracy_dataset=accuracy.dataset if accuracy else None,
            accuracy_source=accuracy.source if accuracy else None,
        )
        rows.append({column: row.get(column) for column in TABLE1_COLUMNS})
    return rows
