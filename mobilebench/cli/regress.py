"""``mobilebench regress``: compare the newest runs with a committed latency baseline.

Exit status: 0 no regression, 1 a regression (or a baseline model missing from the
runs, or a slowdown too poorly sampled to test), 2 bad input (no baseline file, no runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

DB_HELP = "Results database (default: $MOBILEBENCH_DB, else results/mobilebench.sqlite)."


def command(
    baseline: Annotated[Path, typer.Option(help="Baseline CSV, e.g. results/baselines/pixel4.csv.")],
    device: Annotated[Optional[str], typer.Option(help="Only this device profile.")] = None,
    runtime: Annotated[Optional[str], typer.Option(help="Only this runtime (executorch, onnx).")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Only this dtype (fp32, int8).")] = None,
    db: Annotated[Optional[Path], typer.Option(help=DB_HELP)] = None,
    threshold: Annotated[
        float, typer.Option(help="Relative slowdown of the median that may count as a regression.")
    ] = 0.05,
    alpha: Annotated[float, typer.Option(help="Significance level of the one-sided Mann-Whitney U test.")] = 0.01,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Rewrite the baseline from the newest runs (exit 0).")
    ] = False,
    format: Annotated[
        str, typer.Option("--format", help="table, json or markdown (for $GITHUB_STEP_SUMMARY).")
    ] = "table",
) -> None:
    """Compare the newest runs with a latency baseline; exit 1 on a regression.

    A regression: the median is more than --threshold slower than the baseline's AND the
    slowdown is significant on the per-iteration samples (one-sided Mann-Whitney U at
    --alpha). Improvements are reported too. A baseline model without a new run, or a
    slowdown with too few samples to test, also fails the check.
    """
    from rich.console import Console

    from mobilebench.errors import UsageError
    from mobilebench.report.formats import check_format, emit
    from mobilebench.report.regress import compare
    from mobilebench.report.regress import update_baseline as rewrite_baseline
    from mobilebench.store import ResultsStore

    fmt = check_format(format, ("table", "json", "markdown"))
    filters = dict(device=device, runtime=runtime, dtype=dtype)
    report = None
    with ResultsStore(db, create=False) as store:
        if not update_baseline or baseline.is_file():
            try:
                report = compare(store, baseline, threshold=threshold, alpha=alpha, **filters)
            except UsageError:
                if not update_baseline:
                    raise
        if update_baseline:
            written, kept = rewrite_baseline(store, baseline, **filters)
    if report is not None:
        if fmt == "json":
            print(json.dumps(report.as_json(), indent=2))
        elif fmt == "markdown":
            print(report.markdown(), end="")
        else:
            emit(report.COLUMNS, report.rows(), fmt, title=f"Latency regression check {report.headline()}")
    if update_baseline:
        Console(stderr=True).print(f"wrote baseline {baseline}: {written} row(s) from the newest runs, {kept} kept")
        return
    assert report is not None
    if report.exit_code:
        raise typer.Exit(code=report.exit_code)
