"""``mobilebench table2``: the paper's Table 2 (top-1 and latency per phone) from the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DB_HELP = "Results database (default: $MOBILEBENCH_DB, else results/mobilebench.sqlite)."


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


def command(
    devices: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated device profiles, in column order (default: every device with runs)."),
    ] = None,
    models: Annotated[
        Optional[str], typer.Option(help="Comma-separated models, in row order (default: every model with runs).")
    ] = None,
    runtime: Annotated[str, typer.Option(help="executorch or onnx.")] = "executorch",
    dtype: Annotated[str, typer.Option(help="fp32 or int8.")] = "fp32",
    db: Annotated[Optional[Path], typer.Option(help=DB_HELP)] = None,
    output: Annotated[
        Optional[Path],
        typer.Option(help="Also write the table here (.csv, .md or .json) with OUTPUT.provenance.json beside it."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table, csv, json or markdown.")] = "table",
) -> None:
    """Top-1 accuracy and the median latency of the newest successful run per model and device.

    Emulated runs get their own "(ms, emulated)" columns and never fill a phone's column;
    missing measurements stay empty.
    """
    from rich.console import Console

    from mobilebench.report.formats import check_format, emit
    from mobilebench.report.table2 import build_table2, write_table2
    from mobilebench.store import ResultsStore

    fmt = check_format(format, ("table", "csv", "json", "markdown"))
    with ResultsStore(db, create=False) as store:
        table = build_table2(store, devices=_names(devices), models=_names(models), runtime=runtime, dtype=dtype)
        if output is not None:
            sidecar = write_table2(table, output, database=store.path)
    emit(
        table.headers,
        table.records(),
        fmt,
        title=f"Table 2: top-1 vs latency ({runtime}, {dtype}, median of newest run)",
    )
    if output is not None:
        Console(stderr=True).print(f"wrote {output} and {sidecar}")
