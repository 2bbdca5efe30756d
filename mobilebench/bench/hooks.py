"""What a profile session reports while it works (:class:`ProgressHooks`).

Its own small module so that the CLI's displays (:mod:`mobilebench.report.progress`)
can subclass it without importing the session, the device layer and the exporter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ProgressHooks:
    """What the session reports while it works; the CLI draws rich progress from it.

    The default does nothing, so library users and tests get a quiet session.
    """

    def stage(self, text: str) -> None:
        """A new step started (connecting, reading state, cooling down, running)."""

    @contextlib.contextmanager
    def exporting(self, what: str) -> Iterator[bool]:
        """Around one model's export; yields whether the exporter should draw its own
        progress (a display that owns the terminal pauses itself meanwhile)."""
        yield False

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        """Bytes pushed so far for ``what``."""

    def runner_started(self) -> None:
        """The runner's first output arrived: it is loading the model, and this process
        only waits until the iterations are over.

        The place for work that only the end of the run needs (the CLI imports its table
        renderer here), so that it does not add to the command's wall time. On a phone
        it runs off the device. On ``host`` and the emulator it shares this computer
        with the pinned runner, so keep it short (tens of milliseconds): it then falls
        within the model load and the warm-up iterations, which are not timed.
        """

    def iteration(self, done: int, total: int | None) -> None:
        """Runner iterations finished so far, warm-up included (``total`` None: adaptive)."""
