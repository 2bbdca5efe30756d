"""What the CLI prints: the one rich Console setup, and rows in every output format.

Tables go to stdout and live progress to stderr, so ``--format json`` output stays
parseable. Everything printed is data (model names, paths, stored errors), so rich's
markup and emoji codes are off (``[/]`` in a path is printed, not parsed) and text
cells pass through :func:`mobilebench.text.printable` (a name cannot drive the
terminal). Piped output (CI logs, files) has no terminal width and is not squeezed to
80 columns.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from mobilebench.report.formats import cell_text, render
from mobilebench.text import printable

#: Columns of piped output.
PIPED_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=stream,
        width=None if stream.isatty() else PIPED_WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
    )


def emit(columns: Sequence[str], rows: Sequence[dict[str, Any]], fmt: str, *, title: str | None = None) -> None:
    """Print the rows to stdout in ``fmt``: ``table`` (a rich table, titled), ``csv``,
    ``json`` or ``markdown``."""
    if fmt != "table":
        print(render(columns, rows, fmt), end="")
        return
    table = Table(title=printable(title) if title else None)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(printable(cell_text(row.get(c))) for c in columns))
    console().print(table)


def echo_err(message: str) -> None:
    """One line on stderr (notes and warnings; results go to stdout)."""
    print(printable(message), file=sys.stderr)
