"""What ``mobilebench profile`` shows while it works (``ProgressHooks`` for the CLI).

- :class:`QuietTableOutput`: nothing while it works (output piped, or not a table); it
  imports the table renderer while the runner loads the model, when the process only
  waits, instead of after the run.
- :class:`LiveProgress`: on a terminal, rich's live display on stderr (a spinner line
  per stage, bars for pushes and iterations), from the moment there is something to
  watch: the runner's start, or any earlier step that takes longer than
  :attr:`LiveProgress.show_after_s`. A warm run connects, reads the device state and
  checks its files in tens of milliseconds; importing and starting the display for
  that (~60 ms) would cost more than the steps and show nothing anyone could read.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from mobilebench.bench.hooks import ProgressHooks
from mobilebench.report.formats import preload_table_renderer


class QuietTableOutput(ProgressHooks):
    """Draws nothing; prepares the table renderer while the runner loads the model."""

    def __enter__(self) -> QuietTableOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def runner_started(self) -> None:
        preload_table_renderer()


class LiveProgress(QuietTableOutput):
    """rich's live display of the session on stderr, shown once there is something to
    watch. Until then it only remembers the current stage and the bars' values, and shows
    them all when it starts. Thread-safe: a timer thread may start the display while
    the session reports from the main thread."""

    #: Seconds a step may take before the display appears for it.
    show_after_s = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: Any = None  # rich.progress.Progress once shown
        self._timer: threading.Timer | None = None
        self._closed = False
        self._exporting = False
        self._stage = "starting"
        # key -> (description, completed, total, detail): the bars, shown or not yet.
        self._bars: dict[str, tuple[str, float, float | None, str]] = {}
        self._task_ids: dict[str, Any] = {}

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def __enter__(self) -> LiveProgress:
        with self._lock:
            self._arm()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._closed = True
            self._disarm()
            if self._progress is not None:
                self._progress.stop()

    # -- ProgressHooks ------------------------------------------------------------------

    def stage(self, text: str) -> None:
        with self._lock:
            self._stage = text
            if self._progress is not None:
                self._progress.update(self._task_ids["stage"], description=text)
            else:
                self._arm()  # a new step: its own show_after_s

    @contextlib.contextmanager
    def exporting(self, what: str) -> Iterator[bool]:
        # The exporter draws its own step list; two live displays on one terminal
        # garble each other, so ours pauses meanwhile (a cached export draws nothing).
        with self._lock:
            self._exporting = True
            self._disarm()
            if self._progress is not None:
                self._progress.stop()
        try:
            yield True
        finally:
            with self._lock:
                self._exporting = False
                if self._progress is not None:
                    self._progress.start()
                else:
                    self._arm()

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        detail = f"{done_bytes / 1e6:.1f}/{total_bytes / 1e6:.1f} MB"
        self._set_bar(f"push:{what}", f"push {what}", done_bytes, total_bytes, detail)

    def runner_started(self) -> None:
        # The run is worth watching; rich's import now overlaps the model load (and
        # brings the table renderer with it).
        self._show()

    def iteration(self, done: int, total: int | None) -> None:
        self._set_bar("iterations", "iterations", done, total, f"{done}" + (f"/{total}" if total else ""))

    # -- the display --------------------------------------------------------------------

    def _set_bar(self, key: str, description: str, completed: float, total: float | None, detail: str) -> None:
        with self._lock:
            self._bars[key] = (description, completed, total, detail)
            if self._progress is not None:
                self._draw_bar(key)

    def _draw_bar(self, key: str) -> None:
        description, completed, total, detail = self._bars[key]
        if key not in self._task_ids:
            self._task_ids[key] = self._progress.add_task(description, total=total, detail="")
        self._progress.update(self._task_ids[key], completed=completed, total=total, detail=detail)

    def _arm(self) -> None:
        self._disarm()
        if self._closed or self._exporting:
            return
        self._timer = threading.Timer(self.show_after_s, self._show)
        self._timer.daemon = True  # never keeps the process alive
        self._timer.start()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _show(self) -> None:
        with self._lock:
            if self._progress is not None or self._closed or self._exporting:
                return
            self._disarm()
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),  # model names and paths are data
                BarColumn(),
                TextColumn("{task.fields[detail]}", markup=False),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task_ids["stage"] = self._progress.add_task(self._stage, total=None, detail="")
            for key in self._bars:
                self._draw_bar(key)
            self._progress.start()
