"""The argument parser every command is built on, and the options several commands share.

The CLI is plain :mod:`argparse`: a new ``mobilebench`` process must be cheap to start,
because ``mobilebench profile`` is judged by how little of its wall time is not the
measurement itself (see ``benchmarks/bench_profile_overhead.py``), and argparse costs a
few milliseconds where a decorator-based framework with runtime type adapters cost a
third of a second. Each command module (``mobilebench/cli/<name>.py``) provides

* ``add_arguments(parser)``: declares its arguments with ``type=`` converters (the
  converters below for numbers with bounds, :class:`pathlib.Path` for paths), and
* ``run(args)``: whose docstring is the command's help, which turns the parsed
  arguments into the library's configuration dataclasses and calls the library.

Command modules import heavy libraries (torch, executorch, rich) inside ``run`` only, so
``mobilebench --help`` and the database commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

DB_HELP = "results database (default: $MOBILEBENCH_DB, else results/mobilebench.sqlite)"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions keep their paragraphs (they are docstrings); options show their
    default unless it is "nothing" (None, False, an empty list)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        # argparse builds a formatter for every add_argument (to check the metavar) and
        # asks shutil for the width, importing shutil and its compression modules (~4 ms
        # of every call); os answers the same question.
        if width is None:
            width = _terminal_columns()
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _terminal_columns() -> int:
    """What ``shutil.get_terminal_size().columns`` answers: $COLUMNS, else stdout's
    terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line on stderr
    (``error: mobilebench profile: ...``) and exit status 2, like every other error."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def bounded(kind: Callable[[str], int | float], *, minimum: float | None = None, above: float | None = None) -> Callable[[str], int | float]:
    """An argparse ``type=`` that parses ``kind`` (int or float) and checks a lower bound:
    ``minimum`` inclusive, ``above`` exclusive."""

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below the minimum {minimum:g}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"{text} must be greater than {above:g}")
        return value

    return convert


def add_format_option(parser: argparse.ArgumentParser, allowed: Sequence[str], *, default: str = "table", help: str = "") -> None:
    """``--format`` restricted to ``allowed`` (case-insensitive, ``md`` = ``markdown``)."""
    parser.add_argument(
        "--format",
        type=_format_name,
        choices=tuple(allowed),
        default=default,
        help=help or "output format",
    )


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", type=Path, default=None, help=DB_HELP)


def comma_list(text: str) -> list[str] | None:
    """``--models a,b``: the names in order; None (every one) when there are none."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


def _format_name(text: str) -> str:
    value = text.strip().lower()
    return "markdown" if value == "md" else value


def echo_err(message: str) -> None:
    """One line on stderr (notes and warnings; results go to stdout)."""
    print(message, file=sys.stderr)
