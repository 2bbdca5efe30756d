"""Fixtures for the zoo tests: a private copy of the shipped model cards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every test here on one torch thread (see tests/conftest.py)."""
