"""Rendering a list of rows as CSV, JSON or Markdown text (the CLI prints them, and
draws ``table``: :func:`mobilebench.cli.console.emit`).

Rows are dicts keyed by column name; values stay typed (numbers, None) so JSON keeps
them, and the text formats print None as an empty cell. Callers round numbers first.
Text cells are :func:`~mobilebench.text.printable`: a name holding terminal control
sequences is written escaped (JSON escapes them itself).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from mobilebench.text import printable

ALL_FORMATS = ("table", "csv", "json", "markdown")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return printable("; ".join(str(v) for v in value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return printable(value)


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell_text(row.get(c)) for c in columns])
    return out.getvalue()


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(rows), indent=2, default=str) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |"]
    lines.append("|" + "|".join(" --- " for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_md_escape(cell_text(row.get(c))) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def render(columns: Sequence[str], rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Text of the rows in ``csv``, ``json`` or ``markdown``."""
    if fmt == "csv":
        return to_csv(columns, rows)
    if fmt == "json":
        return to_json(rows)
    if fmt == "markdown":
        return to_markdown(columns, rows)
    raise ValueError(f"render() does not produce {fmt!r}")
