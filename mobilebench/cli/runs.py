"""``mobilebench runs``: list stored benchmark runs, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

DB_HELP = "Results database (default: $MOBILEBENCH_DB, else results/mobilebench.sqlite)."
BRIEF_COLUMNS = (
    "id",
    "created",
    "status",
    "model",
    "device",
    "runtime",
    "dtype",
    "median_ms",
    "ci_ms",
    "n",
    "cv",
    "runner",
    "notes",
)


def _brief(record: Any) -> dict[str, Any]:
    m, s = record.meta, record.stats
    ci = f"{s.ci_low_ms:.2f}-{s.ci_high_ms:.2f}" if s and s.ci_low_ms is not None else None
    if record.error:
        notes = record.error
    else:
        notes = f"{len(m.warnings)} warning(s)" if m.warnings else None
    return {
        "id": record.id,
        "created": record.created_at[:19].replace("T", " "),
        "status": record.status,
        "model": m.model,
        "device": m.device_profile + (" (emulated)" if m.emulated else ""),
        "runtime": m.runtime,
        "dtype": m.dtype,
        "median_ms": round(s.median_ms, 2) if s else None,
        "ci_ms": ci,
        "n": s.n if s else None,
        "cv": f"{s.cv:.1%}" if s and s.cv is not None else None,
        "runner": m.runner_name,
        "notes": notes,
    }


def command(
    model: Annotated[Optional[str], typer.Option(help="Only runs of this model.")] = None,
    device: Annotated[Optional[str], typer.Option(help="Only runs on this device profile.")] = None,
    status: Annotated[
        Optional[str], typer.Option(help="Only runs with this status: running, ok, failed, aborted.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N runs.")] = 20,
    db: Annotated[Optional[Path], typer.Option(help=DB_HELP)] = None,
    format: Annotated[str, typer.Option("--format", help="table, csv or json (csv/json: every column).")] = "table",
) -> None:
    """List stored benchmark runs, newest first."""
    from mobilebench.report.formats import check_format, emit
    from mobilebench.store import ResultsStore

    fmt = check_format(format, ("table", "csv", "json"))
    with ResultsStore(db, create=False) as store:
        records = store.runs(model=model, device=device, status=status, limit=limit)
    if fmt == "table":
        emit(BRIEF_COLUMNS, [_brief(r) for r in records], fmt, title=f"{len(records)} run(s), newest first")
        return
    rows = [r.as_dict() for r in records]
    columns = list(rows[0]) if rows else ["id"]
    emit(columns, rows, fmt)
