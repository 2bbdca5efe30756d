"""Building the text sent to a device's shell, and reading the exit status back.

Nothing user-given is ever interpreted by the device's shell: every argument, environment
value and directory is quoted with :func:`shlex.quote` (POSIX single quotes, understood by
Android's mksh and by dash/bash).

adb's ``shell:`` service (protocol v1) does not return the exit status, so every command
is wrapped to print a sentinel line with ``$?`` after it (:func:`wrap_with_status`). The
sentinel is unique per command and is assembled by ``printf`` from two halves, so its full
text appears only in the output, never in the command that the shell might echo.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence

from mobilebench.errors import UsageError

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_argv(argv: Sequence[str]) -> str:
    """``["ls", "a b; rm x"]`` -> ``ls 'a b; rm x'``."""
    if isinstance(argv, str) or not argv:
        raise UsageError("a device command must be a non-empty list of arguments")
    for arg in argv:
        if not isinstance(arg, str):
            raise UsageError(f"device command arguments must be strings, got {arg!r}")
        if "\0" in arg:
            raise UsageError("device command arguments must not contain NUL bytes")
    return " ".join(shlex.quote(arg) for arg in argv)


def build_command(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> str:
    """One shell command line: ``cd DIR && NAME=value ... argv``, all quoted."""
    parts = []
    for name, value in (env or {}).items():
        if not _ENV_NAME_RE.match(name):
            raise UsageError(f"invalid environment variable name {name!r}")
        parts.append(f"{name}={shlex.quote(str(value))}")
    command = " ".join([*parts, quote_argv(argv)])
    if cwd is not None:
        command = f"cd {shlex.quote(cwd)} && {command}"
    return command


def new_marker(name: str) -> tuple[str, str]:
    """A marker unique to one command, ``__MB_<name>_<random>__``, as two halves for
    ``printf '%s%s' HEAD TAIL``: its full text then appears only in the output, never in
    the command (which a shell might echo)."""
    return f"__MB_{name}_", f"{os.urandom(8).hex()}__"


def wrap_with_status(script: str) -> tuple[str, str]:
    """Make ``script`` report its exit status; returns (wrapped script, sentinel).

    The script runs in a brace group with stdin from /dev/null (adb's shell stdin is the
    stream, which never ends) and stderr merged into stdout. Afterwards
    ``<sentinel>:<status>`` and a newline are printed, right after the output (no newline
    before it: then output ending in a newline can be passed on while the command runs,
    instead of waiting to see whether that newline started the sentinel);
    :func:`split_status` removes exactly that.
    """
    head, tail = new_marker("RC")
    wrapped = f"{{ {script}\n}} </dev/null 2>&1; printf '%s%s:%d\\n' {head} {tail} \"$?\""
    return wrapped, head + tail


def split_status(output: bytes, sentinel: str) -> tuple[bytes, int] | None:
    """(command output, exit status), or None when the sentinel line never came."""
    marker = sentinel.encode() + b":"
    index = output.rfind(marker)
    if index < 0:
        return None
    match = re.match(rb"(\d+)\r?\n?", output[index + len(marker) :])
    if not match:
        return None
    return output[:index], int(match.group(1))
