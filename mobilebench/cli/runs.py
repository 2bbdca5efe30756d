"""``mobilebench runs``: list stored benchmark runs, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from mobilebench.cli.parsing import add_db_option, add_format_option, bounded
from mobilebench.store import RUN_STATUSES, process_alive

BRIEF_COLUMNS = (
    "id", "created", "status", "model", "device", "runtime", "dtype", "median_ms", "ci_ms", "n",
    "cv", "runner", "comparison", "notes",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME", help="only runs of this model")
    parser.add_argument("--device", metavar="PROFILE", help="only runs on this device profile")
    parser.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    parser.add_argument("--limit", metavar="N", type=bounded(int, minimum=1), default=20, help="show the newest N runs")
    add_db_option(parser)
    add_format_option(parser, ("table", "csv", "json"), help="csv/json: every column")


def run(args: argparse.Namespace) -> None:
    """List stored benchmark runs, newest first."""
    from mobilebench.cli.console import emit
    from mobilebench.store import ResultsStore

    with ResultsStore(args.db, create=False) as store:
        records = store.runs(model=args.model, device=args.device, status=args.status, limit=args.limit)
    if args.format == "table":
        emit(BRIEF_COLUMNS, [_brief(r) for r in records], "table", title=f"{len(records)} run(s), newest first")
        return
    rows = [r.as_dict() for r in records]
    columns = list(rows[0]) if rows else ["id"]
    emit(columns, rows, args.format)


def _brief(record: Any) -> dict[str, Any]:
    m, s = record.meta, record.stats
    ci = f"{s.ci_low_ms:.2f}-{s.ci_high_ms:.2f}" if s and s.ci_low_ms is not None else None
    if record.error:
        notes = record.error
    else:
        notes = f"{len(m.warnings)} warning(s)" if m.warnings else None
    status = record.status
    if status == "running" and process_alive(record.host, record.pid) is False:
        status = "running (process gone)"
    return {
        "id": record.id,
        "created": record.created_at[:19].replace("T", " "),
        "status": status,
        "model": m.model,
        "device": m.device_profile + (" (emulated)" if m.emulated else ""),
        "runtime": m.runtime,
        "dtype": m.dtype,
        "median_ms": round(s.median_ms, 2) if s else None,
        "ci_ms": ci,
        "n": s.n if s else None,
        "cv": f"{s.cv:.1%}" if s and s.cv is not None else None,
        "runner": m.runner_name,
        "comparison": f"cmp {m.comparison_id}" if m.comparison_id is not None else None,
        "notes": notes,
    }
