"""A per-operator profile as a table and as a figure: where the time goes, at what rate.

Each row is one operator of a traced run (:mod:`mobilebench.bench.per_op`): its median
time over the traced iterations, its share of the operators' total, the multiply-adds
fvcore attributes to it and hence its achieved rate in GMAC/s (10^9 multiply-adds per
second). Reading it: the top rows are where the time goes; a large MAC count at a low
rate is a layer that runs poorly (memory-bound fully-connected heads, depthwise
convolutions); rows without MACs (activations, additions, layout changes) cost time
without arithmetic. The total line compares the operators' sum with the traced run's
median: the difference is the runtime's own work between operators.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobilebench.errors import UsageError
from mobilebench.files import write_bytes_atomic
from mobilebench.records import OpRecord
from mobilebench.report.plot import IMAGE_FORMATS

COLUMNS = ("rank", "operator", "kind", "delegate", "ms", "share", "MMACs", "GMAC/s", "calls")


def op_rows(ops: Sequence[OpRecord], *, top: int | None = None) -> list[dict[str, Any]]:
    """The slowest ``top`` operators (all with None) as table rows, then a total line."""
    total_ms = sum(op.ms for op in ops)
    rows = [_row(op, total_ms) for op in sorted(ops, key=lambda op: op.rank)[:top]]
    macs = sum(op.macs or 0.0 for op in ops)
    rows.append(
        {
            "rank": None,
            "operator": f"all {len(ops)} operators",
            "ms": round(total_ms, 4),
            "share": "100%",
            "MMACs": round(macs / 1e6, 2),
            "GMAC/s": round(macs / (total_ms * 1e6), 2) if total_ms > 0 else None,
        }
    )
    return rows


def _row(op: OpRecord, total_ms: float) -> dict[str, Any]:
    return {
        "rank": op.rank,
        "operator": op.name,
        "kind": op.kind,
        "delegate": op.delegate,
        "ms": round(op.ms, 4),
        "share": f"{op.ms / total_ms:.1%}" if total_ms > 0 else None,
        "MMACs": round(op.macs / 1e6, 2) if op.macs else None,
        "GMAC/s": round(op.gmacs, 2) if op.gmacs is not None else None,
        "calls": op.calls,
    }


def draw_ops(ops: Sequence[OpRecord], output: Path, *, title: str, label_top: int = 6) -> None:
    """Operators as points, achieved GMAC/s against MACs (log-log), the slowest labelled;
    to ``output`` (.png or .svg), atomically. Operators without MACs cannot be placed."""
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"cannot write {output}: the figure must be .png or .svg")
    placed = [op for op in ops if op.macs and op.ms > 0]
    if not placed:
        raise UsageError("nothing to plot: no operator of this run has multiply-adds")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.0), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sizes = [20 + 400 * op.ms / max(o.ms for o in placed) for op in placed]  # area ~ time
    ax.scatter([op.macs / 1e6 for op in placed], [op.gmacs for op in placed], s=sizes, alpha=0.6, color="tab:blue")
    for op in sorted(placed, key=lambda o: o.rank)[:label_top]:
        ax.annotate(f"{op.name} ({op.ms:.2f} ms)", (op.macs / 1e6, op.gmacs), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("multiply-adds per operator (millions, fvcore)")
    ax.set_ylabel("achieved rate (GMAC/s)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=150)
    write_bytes_atomic(output, buffer.getvalue())
