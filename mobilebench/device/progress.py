"""A rich progress bar for file transfers, as a :data:`~mobilebench.device.base.ProgressCallback`.

    with transfer_progress(f"push {artifact.name}") as progress:
        device.push_if_changed(artifact, remote, progress=progress)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mobilebench.device.base import ProgressCallback


@contextmanager
def transfer_progress(label: str, *, console=None, transient: bool = True) -> Iterator[ProgressCallback]:
    """Yield a callback that drives a rich bar (bytes, speed, time left)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (
        TextColumn("{task.description}", markup=False),  # a file name is data, not rich markup
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=transient) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
