"""Training-test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run in-process training and evaluation on one thread.

    The models here are tiny: extra threads buy nothing, and on a busy machine they
    contend and make a step many times slower. Subprocesses get OMP_NUM_THREADS=1.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
