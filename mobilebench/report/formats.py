"""Rendering a list of rows as a rich table, CSV, JSON or Markdown.

Rows are dicts keyed by column name; values stay typed (numbers, None) so JSON keeps
them, and the text formats print None as an empty cell. Callers round numbers first.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

ALL_FORMATS = ("table", "csv", "json", "markdown")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


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
    """Text of the rows in ``csv``, ``json`` or ``markdown`` (``table`` is printed by :func:`emit`)."""
    if fmt == "csv":
        return to_csv(columns, rows)
    if fmt == "json":
        return to_json(rows)
    if fmt == "markdown":
        return to_markdown(columns, rows)
    raise ValueError(f"render() does not produce {fmt!r}")


def preload_table_renderer() -> None:
    """Import what :func:`emit` needs for ``table`` now rather than on first use, at a
    moment when the caller would otherwise wait (rich's console and table modules: ~35 ms
    of CPU, a tenth of a short ``mobilebench profile``)."""
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401


def emit(columns: Sequence[str], rows: Sequence[dict[str, Any]], fmt: str, *, title: str | None = None) -> None:
    """Print the rows to stdout in ``fmt``; ``table`` is a rich table (titled), others plain text."""
    if fmt != "table":
        print(render(columns, rows, fmt), end="")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell_text(row.get(c)) for c in columns))
    # Piped output (CI logs, files) has no terminal width: do not squeeze to 80 columns.
    # Cells are data (model names, paths, error text): printed as they are, never read
    # as rich markup ("[/]" in a path would be an error) or emoji codes.
    Console(width=None if sys.stdout.isatty() else 200, markup=False, emoji=False, highlight=False).print(table)
