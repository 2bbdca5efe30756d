"""Rich progress bars for training and evaluation, or nothing at all.

Bars go to stderr so that ``--format json`` output on stdout stays parseable. A disabled
reporter (other DDP ranks, ``--no-progress``, tests) accepts the same calls and does
nothing, so callers have no branches.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressReporter:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
            )

    def __enter__(self) -> ProgressReporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, description: str, total: int, completed: int = 0) -> TaskID | None:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, completed=completed, info="")

    def advance(self, task: TaskID | None, info: str | None = None) -> None:
        if self._progress is not None and task is not None:
            if info is None:
                self._progress.advance(task)
            else:
                self._progress.update(task, advance=1, info=info)

    def finish(self, task: TaskID | None, info: str | None = None, *, keep: bool = False) -> None:
        """Mark ``task`` done; keep its line (epochs) or remove it (evaluation passes)."""
        if self._progress is None or task is None:
            return
        if keep:
            self._progress.update(task, info=info if info is not None else "")
        else:
            self._progress.remove_task(task)

    def print(self, message: str) -> None:
        if self.enabled:
            self.console.print(message, markup=False, highlight=False)
