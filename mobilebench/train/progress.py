"""What training and evaluation report while they work (:class:`TrainProgress`).

The CLI draws it (:class:`mobilebench.cli.progress.TrainingProgress`); the default
draws nothing, which is what other DDP ranks, library users and tests get.
"""

from __future__ import annotations

from typing import Any


class TrainProgress:
    """Epochs and evaluation passes as tasks with a step count, plus one-line notes."""

    def __enter__(self) -> TrainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, description: str, total: int, completed: int = 0) -> Any:
        """A new task of ``total`` steps; returns its handle (None if not drawn)."""
        return None

    def advance(self, task: Any, info: str | None = None) -> None:
        """One step of ``task`` done; ``info`` replaces its trailing text (loss, lr)."""

    def finish(self, task: Any, info: str | None = None, *, keep: bool = False) -> None:
        """Mark ``task`` done; keep its line (epochs) or remove it (evaluation passes)."""

    def print(self, message: str) -> None:
        """A note for the person watching (resuming, already complete)."""
