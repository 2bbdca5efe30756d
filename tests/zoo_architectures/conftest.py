"""GhostNet and MnasNet (the Table 2 baselines besides MobileNet): shared helpers for
their tests, the published state_dict layouts.

A layout file (``data/*.layout``) lists one module per line: dotted name, kind, shape;
see the files' headers for where each was written down from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# The registry imports every zoo module on first lookup; importing these explicitly
# keeps the tests independent of the package's __init__.
import mobilebench.zoo.ghostnet  # noqa: F401
import mobilebench.zoo.mnasnet  # noqa: F401

DATA = Path(__file__).parent / "data"

Layout = list[tuple[str, tuple[int, ...]]]


def read_layout(name: str) -> Layout:
    """The ordered (state_dict key, shape) list a layout file describes."""
    entries: Layout = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        module, kind, shape_text = line.split()
        shape = tuple(int(n) for n in shape_text.split("x"))
        if kind == "conv":
            entries.append((f"{module}.weight", shape))
        elif kind in ("convb", "linear"):
            entries += [(f"{module}.weight", shape), (f"{module}.bias", shape[:1])]
        elif kind == "bn":
            entries += [(f"{module}.{p}", shape) for p in ("weight", "bias", "running_mean", "running_var")]
            entries.append((f"{module}.num_batches_tracked", ()))
        else:
            raise ValueError(f"{name}: unknown kind {kind!r} in {line!r}")
    return entries


def random_state_dict(layout: Layout, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights in a published layout, as a foreign checkpoint would hold them.

    Conv/Linear weights are He-scaled so 50 layers keep activations finite; BatchNorm
    gets non-trivial statistics so a mis-wired BN would show in the outputs.
    """
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 1:  # BatchNorm weight
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    return state


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every test here on one torch thread (see tests/conftest.py)."""


@pytest.fixture
def layout() -> Callable[[str], Layout]:
    return read_layout


@pytest.fixture
def foreign_state_dict() -> Callable[..., dict[str, torch.Tensor]]:
    return random_state_dict
