"""The CLI's progress displays: rich on stderr, drawn only for a person at a terminal.

- :class:`SessionProgress` draws a profile or comparison session
  (:class:`~mobilebench.bench.hooks.ProgressHooks`): a spinner line for the current
  stage, bars for pushes and runner iterations. It has no refresh thread: it redraws
  when the session reports (at most every :attr:`SessionProgress.min_redraw_s`), and
  not at all while a runner on this computer measures.
- :class:`DeviceLines` prints one line per stage, prefixed by the device, for
  several devices measured at once (live displays of parallel workers would garble
  each other).
- :class:`TrainingProgress` draws training epochs and evaluation passes
  (:class:`~mobilebench.train.progress.TrainProgress`).

:func:`session_progress` and :func:`training_progress` pick the display or the quiet
default (a session's display is transient: piped output, such as a CI log, gets nothing
from it).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mobilebench.bench.hooks import ProgressHooks
from mobilebench.cli.console import console
from mobilebench.export import ExportHooks
from mobilebench.text import printable

if TYPE_CHECKING:
    from mobilebench.train.progress import TrainProgress


def on_a_terminal() -> bool:
    return sys.stderr.isatty()


def session_progress() -> ProgressHooks:
    """A :class:`SessionProgress` on a terminal, else the quiet hooks."""
    return SessionProgress() if on_a_terminal() else ProgressHooks()


def training_progress(enabled: bool = True) -> TrainProgress:
    """A :class:`TrainingProgress` when ``enabled`` (its notes reach logs too), else the quiet one."""
    from mobilebench.train.progress import TrainProgress  # the train package imports torch

    return TrainingProgress() if enabled else TrainProgress()


class SessionProgress(ProgressHooks):
    """rich's display of a profile session on stderr (see the module docstring).

    Use as a context manager around the session; labels are data (model names, paths)
    and are shown escaped, never read as markup.
    """

    #: Seconds between redraws for frequent reports (bytes pushed, iterations).
    min_redraw_s = 0.1

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=True,
            auto_refresh=False,
        )
        self._stage = self._progress.add_task("starting", total=None, detail="")
        self._bars: dict[str, Any] = {}
        # Bars first reported while quiet: rich draws when a task is added.
        self._pending: dict[str, tuple[float, float | None, str]] = {}
        self._quiet = False
        self._shown = False
        self._last_draw = 0.0

    def __enter__(self) -> SessionProgress:
        self._show(True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._show(False)

    # -- ProgressHooks ------------------------------------------------------------------

    def stage(self, text: str) -> None:
        self._progress.update(self._stage, description=printable(text))
        self._draw(force=True)

    @contextlib.contextmanager
    def exporting(self, what: str) -> Iterator[ExportHooks]:
        # The export's stages become the stage line, calibration a bar.
        yield _ExportStages(self, what)

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        detail = f"{done_bytes / 1e6:.1f}/{total_bytes / 1e6:.1f} MB"
        self._bar(f"push {printable(what)}", done_bytes, total_bytes, detail)

    @contextlib.contextmanager
    def measuring(self, *, on_this_computer: bool) -> Iterator[None]:
        if not on_this_computer:
            yield
            return
        self._progress.update(self._stage, detail="display paused: the runner measures on this computer")
        self._draw(force=True)
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False
            self._progress.update(self._stage, detail="")
            for description, values in self._pending.items():
                self._bar(description, *values)
            self._pending.clear()
            self._draw(force=True)

    def iteration(self, done: int, total: int | None) -> None:
        self._bar("iterations", done, total, f"{done}" + (f"/{total}" if total else ""))

    # -- drawing ------------------------------------------------------------------------

    def _show(self, shown: bool) -> None:
        if shown and not self._shown:
            self._progress.start()
        elif self._shown and not shown:
            self._progress.stop()
        self._shown = shown

    def _bar(self, description: str, completed: float, total: float | None, detail: str) -> None:
        if description not in self._bars:
            if self._quiet:
                self._pending[description] = (completed, total, detail)
                return
            self._bars[description] = self._progress.add_task(description, total=total, detail="")
        self._progress.update(self._bars[description], completed=completed, total=total, detail=detail)
        self._draw()

    def _draw(self, *, force: bool = False) -> None:
        if self._quiet or not self._shown:
            return
        now = time.monotonic()
        if force or now - self._last_draw >= self.min_redraw_s:
            self._progress.refresh()
            self._last_draw = now


class DeviceLines(ProgressHooks):
    """``[pixel4] running mobilebench_runner on cpu7``: a line on stderr per stage of one
    device's worker (thread-safe; nothing between stages, so nothing while a runner
    measures)."""

    _lock = threading.Lock()

    def __init__(self, device: str) -> None:
        self.device = printable(device)

    def stage(self, text: str) -> None:
        with self._lock:
            print(f"[{self.device}] {printable(text)}", file=sys.stderr, flush=True)


class _ExportStages(ExportHooks):
    """One model's export stages, shown on a :class:`SessionProgress`."""

    def __init__(self, display: SessionProgress, what: str) -> None:
        self.display, self.what = display, what
        self.bar: tuple[str, int, int] | None = None  # description, done, total

    def stage_started(self, stage: str, label: str, total: int | None = None) -> None:
        self.display.stage(f"exporting {self.what}: {label}")
        if total:
            self.bar = (f"export {printable(self.what)}: {label}", 0, total)
            self.display._bar(self.bar[0], 0, total, f"0/{total}")

    def advanced(self, stage: str) -> None:
        if self.bar is not None:
            description, done, total = self.bar
            self.bar = (description, done + 1, total)
            self.display._bar(description, done + 1, total, f"{done + 1}/{total}")


class TrainingProgress:
    """rich bars for training epochs and evaluation passes, on stderr (it implements
    :class:`~mobilebench.train.progress.TrainProgress`)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            console=console(stderr=True),
        )

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, description: str, total: int, completed: int = 0) -> Any:
        return self._progress.add_task(description, total=total, completed=completed, info="")

    def advance(self, task: Any, info: str | None = None) -> None:
        if info is None:
            self._progress.advance(task)
        else:
            self._progress.update(task, advance=1, info=info)

    def finish(self, task: Any, info: str | None = None, *, keep: bool = False) -> None:
        if keep:
            self._progress.update(task, info=info if info is not None else "")
        else:
            self._progress.remove_task(task)

    def print(self, message: str) -> None:
        self._progress.console.print(printable(message))
