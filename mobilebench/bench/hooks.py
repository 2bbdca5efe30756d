"""What a profile session reports while it works (:class:`ProgressHooks`).

The CLI draws it (:mod:`mobilebench.cli.progress`); library users and tests get the
quiet default. Its own small module so that a display can implement it without
importing the session and the device layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mobilebench.export.pipeline import ExportHooks


class ProgressHooks:
    """What the session reports while it works. The default does nothing.

    A context manager: a display is shown from ``__enter__`` to ``__exit__``.
    """

    def __enter__(self) -> ProgressHooks:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def stage(self, text: str) -> None:
        """A new step started (exporting, connecting, reading state, cooling down, running)."""

    @contextlib.contextmanager
    def exporting(self, what: str) -> Iterator[ExportHooks]:
        """Around one model's export; yields what the exporter reports its stages to."""
        yield ExportHooks()

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        """Bytes pushed so far for ``what``."""

    @contextlib.contextmanager
    def measuring(self, *, on_this_computer: bool) -> Iterator[None]:
        """Around the runner's window: from its start to its exit (model load, warm-up
        and timed iterations).

        ``on_this_computer`` says the runner shares this computer's CPUs (the ``host``
        device, the phone emulator): then nothing may be drawn until the window ends,
        since every redraw is CPU time taken from the measurement. :meth:`iteration` is
        still called; a display only records it.
        """
        yield

    def iteration(self, done: int, total: int | None) -> None:
        """Runner iterations finished so far, warm-up included (``total`` None: adaptive)."""
