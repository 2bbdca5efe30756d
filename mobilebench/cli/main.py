"""Entry point of the ``mobilebench`` command.

Each command lives in its own module ``mobilebench/cli/<name>.py`` with an
``add_arguments(parser)`` and a ``run(args)`` (see :mod:`mobilebench.cli.parsing`); this
file only wires them up and turns expected failures
(:class:`~mobilebench.errors.MobilebenchError`) into one line on stderr and an exit code.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from mobilebench.cli.parsing import CommandParser
from mobilebench.errors import MobilebenchError, Terminated
from mobilebench.text import printable

# (command name, module under mobilebench.cli) in the order ``--help`` lists them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("models", "models"),
    ("flops", "flops"),
    ("export", "export"),
    ("devices", "devices"),
    ("emulator", "emulator"),
    ("profile", "profile"),
    ("compare", "compare"),
    ("runs", "runs"),
    ("table2", "table2"),
    ("plot", "plot"),
    ("regress", "regress"),
    ("lab", "lab"),
    ("train", "train"),
    ("eval", "eval"),
)

DESCRIPTION = "What a compact classifier's accuracy costs in latency, measured on real phones."


def build_parser(only: str | None = None) -> CommandParser:
    """The parser of every command, or with ``only`` of that command alone (a command's
    module may import its library to list choices: ``train`` imports torch)."""
    parser = CommandParser(prog="mobilebench", description=DESCRIPTION)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name, module_name in COMMANDS:
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"mobilebench.cli.{module_name}")
        doc = inspect.getdoc(module.run) or ""
        sub = commands.add_parser(name, help=doc.split("\n\n")[0].replace("\n", " "), description=doc)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mobilebench ARGV`` (default: ``sys.argv[1:]``) and return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in dict(COMMANDS) else None
    parser = build_parser(only=command)
    if not args_list:
        parser.print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help (0) or a usage error, already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = args.run(args)
    except MobilebenchError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Terminated:
        return _fail("terminated (SIGTERM)", 128 + signal.SIGTERM)
    except BrokenPipeError:
        # `mobilebench runs | head`: the reader is gone; nothing left to say.
        return 1
    except OSError as exc:
        # Disk full, permissions, missing files that slipped past validation: say which
        # file and why in one line instead of a traceback.
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _fail(f"no space left on device while writing {exc.filename or 'a file'}", 1)
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", 1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code or 0


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated()


def _fail(message: str, code: int) -> int:
    print(f"error: {printable(message)}", file=sys.stderr)
    return code


def entry_point() -> NoReturn:
    """The ``mobilebench`` console script: :func:`main`, then exit with its status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
