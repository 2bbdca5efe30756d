"""``mobilebench plot``: accuracy vs latency, FLOPs or parameters, with the Pareto front."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DB_HELP = "Results database (default: $MOBILEBENCH_DB, else results/mobilebench.sqlite)."


def command(
    x: Annotated[str, typer.Option("--x", help="Horizontal axis: latency, flops or params.")] = "latency",
    device: Annotated[
        Optional[str], typer.Option(help="Device profile for --x latency (default: the only one with runs).")
    ] = None,
    runtime: Annotated[str, typer.Option(help="executorch or onnx (latency).")] = "executorch",
    dtype: Annotated[str, typer.Option(help="fp32 or int8 (latency).")] = "fp32",
    models: Annotated[
        Optional[str], typer.Option(help="Comma-separated models (default: every model in the database).")
    ] = None,
    db: Annotated[Optional[Path], typer.Option(help=DB_HELP)] = None,
    output: Annotated[
        Optional[Path], typer.Option(help="Figure file, .png or .svg (default: results/figures/accuracy_vs_X.png).")
    ] = None,
) -> None:
    """Draw top-1 accuracy against latency (or FLOPs/params), one labelled marker per model."""
    from rich.console import Console

    from mobilebench.errors import UsageError
    from mobilebench.paths import default_db_path
    from mobilebench.report.plot import X_METRICS, cost_points, draw, latency_points
    from mobilebench.store import ResultsStore

    metric = x.strip().lower()
    if metric not in X_METRICS:
        raise UsageError(f"unknown --x {x!r}; choose one of {', '.join(X_METRICS)}")
    names = [n.strip() for n in models.split(",") if n.strip()] if models else None
    if metric != "latency" and names and not (db or default_db_path()).exists():
        # FLOPs of named models need no measurements: top-1 then comes from model cards.
        data = cost_points(None, metric=metric, models=names)
    else:
        with ResultsStore(db, create=False) as store:
            if metric == "latency":
                data = latency_points(store, device=device, runtime=runtime, dtype=dtype, models=names)
            else:
                data = cost_points(store, metric=metric, models=names)
    if output is None:
        suffix = f"_{device}" if device else ""
        output = Path("results") / "figures" / f"accuracy_vs_{metric}{suffix}.png"
    draw(data, output)
    console = Console(stderr=True)
    for reason in data.skipped:
        console.print(f"skipped {reason}")
    console.print(f"wrote {output} ({len(data.points)} models)")
