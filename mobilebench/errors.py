"""The one exception type users see.

Every expected failure (bad input, unreachable device, failed parity check, ...) is raised
as a :class:`MobilebenchError` (or a subclass) whose message is a single line saying what
was wrong and, where possible, what to do. The CLI prints that line and exits with
``exit_code``; anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations


class MobilebenchError(Exception):
    """An expected, user-facing failure with a one-line message."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        # One line, always: multi-line causes (exporter traces, stderr) are folded.
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(MobilebenchError):
    """Bad command-line input or data the user supplied (exit code 2)."""

    exit_code = 2


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM, what CI and ``timeout`` send).

    Like :class:`KeyboardInterrupt`, a BaseException: it unwinds everything, and
    whatever was in progress is recorded as failed on the way out.
    """
