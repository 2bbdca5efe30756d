"""Fixtures for the FLOPs tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """One intra-op thread: on the shared 2-core test machine, two OpenMP threads per
    forward spin against the other test processes and run ~10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
