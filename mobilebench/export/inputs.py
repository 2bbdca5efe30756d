"""Model inputs that every part of mobilebench must reproduce bit for bit.

:func:`fixed_input` is the one input parity checks use (export here, the native runner
and the profile tests elsewhere). Its generator is defined on 32-bit integers so that a
C++ program reproduces it exactly without a torch dependency:

    for element index i = 0 .. n-1 (C order over ``shape``):
        key  = lowbias32(seed ^ 0x9e3779b9)         # seed as uint32
        u    = lowbias32(lowbias32(i) ^ key)        # uint32 arithmetic, wrapping
        x[i] = float32(u >> 8) * 2^-23 - 1          # exact in float32, in [-1, 1)

    lowbias32(v):                                   # Chris Wellons' integer hash
        v ^= v >> 16; v *= 0x7feb352d
        v ^= v >> 15; v *= 0x846ca68b
        v ^= v >> 16; return v

:func:`write_fixed_input` writes the same tensor as raw little-endian float32 (C order)
for programs that would rather read it than compute it.

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mobilebench.errors import UsageError
from mobilebench.files import write_bytes_atomic

if TYPE_CHECKING:
    import torch


def _lowbias32(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint32, copy=True)
    v ^= v >> np.uint32(16)
    v *= np.uint32(0x7FEB352D)
    v ^= v >> np.uint32(15)
    v *= np.uint32(0x846CA68B)
    v ^= v >> np.uint32(16)
    return v


def fixed_input_array(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """The :func:`fixed_input` values as a float32 numpy array (see the module docstring)."""
    shape = tuple(int(d) for d in shape)
    if any(d <= 0 for d in shape):
        raise UsageError(f"input shape must have positive dimensions, got {shape}")
    if not 0 <= seed < 2**32:
        raise UsageError(f"seed must fit in 32 bits, got {seed}")
    n = math.prod(shape)
    key = _lowbias32(np.array([seed], dtype=np.uint32) ^ np.uint32(0x9E3779B9))
    u = _lowbias32(_lowbias32(np.arange(n, dtype=np.uint32)) ^ key)
    x = (u >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-23) - np.float32(1.0)
    return x.reshape(shape)


def fixed_input(shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """A deterministic float32 tensor of ``shape`` with values in [-1, 1).

    Reproducible across machines, libraries and languages: the exact generator is in
    this module's docstring. ``seed`` selects an independent tensor (0 is the parity
    input; int8 calibration uses seeds from 1000 up).
    """
    import torch

    return torch.from_numpy(fixed_input_array(shape, seed))


def write_fixed_input(path: Path, shape: Sequence[int], seed: int = 0) -> Path:
    """Write :func:`fixed_input` to ``path`` as raw little-endian float32, atomically."""
    data = fixed_input_array(shape, seed).astype("<f4", copy=False).tobytes(order="C")
    path = Path(path)
    write_bytes_atomic(path, data, mode=0o644, suffix=".partial")
    return path
