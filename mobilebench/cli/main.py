"""Entry point of the ``mobilebench`` command.

Each command lives in its own module ``mobilebench/cli/<name>.py`` exposing a typer-annotated
function ``command``; this file only wires them up and turns expected failures
(:class:`~mobilebench.errors.MobilebenchError`) into one line on stderr and an exit code.
Command modules import heavy libraries (torch, executorch) inside ``command`` so that
``mobilebench --help`` and the database commands start fast.
"""

from __future__ import annotations

import errno
import importlib
import sys

import typer

from mobilebench.errors import MobilebenchError

# (command name, module under mobilebench.cli) in the order ``--help`` lists them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("models", "models"),
    ("flops", "flops"),
    ("export", "export"),
    ("devices", "devices"),
    ("emulator", "emulator"),
    ("profile", "profile"),
    ("runs", "runs"),
    ("table2", "table2"),
    ("plot", "plot"),
    ("regress", "regress"),
    ("train", "train"),
    ("eval", "eval"),
)

app = typer.Typer(
    name="mobilebench",
    help="What a compact classifier's accuracy costs in latency, measured on real phones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name, _module in COMMANDS:
    app.command(name=_name)(importlib.import_module(f"mobilebench.cli.{_module}").command)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    try:
        app()
    except MobilebenchError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:
        # Disk full, permissions, missing files that slipped past validation: say which
        # file and why in one line instead of a traceback.
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            _fail(f"no space left on device while writing {exc.filename or 'a file'}", 1)
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", 1)


if __name__ == "__main__":
    main()
