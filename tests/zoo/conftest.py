"""Fixtures for the zoo tests: a private copy of the shipped model cards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mobilebench import paths

SHIPPED_CARDS = paths.project_root() / "models"


@pytest.fixture
def cards_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of models/*.toml, selected through MOBILEBENCH_MODELS_DIR."""
    folder = tmp_path / "models"
    folder.mkdir()
    for card in SHIPPED_CARDS.glob("*.toml"):
        shutil.copy(card, folder)
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(folder))
    return folder


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """One intra-op thread: on the shared 2-core test machine, two OpenMP threads per
    forward spin against the other test processes and run ~10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
