"""fixed_input: the cross-language parity input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobilebench.errors import UsageError
from mobilebench.export import fixed_input, write_fixed_input


def _reference_generator(n: int, seed: int) -> list[float]:
    """The generator exactly as documented for C++, in plain Python integers."""

    def lowbias32(v: int) -> int:
        v &= 0xFFFFFFFF
        v ^= v >> 16
        v = (v * 0x7FEB352D) & 0xFFFFFFFF
        v ^= v >> 15
        v = (v * 0x846CA68B) & 0xFFFFFFFF
        v ^= v >> 16
        return v

    key = lowbias32(seed ^ 0x9E3779B9)
    return [(lowbias32(lowbias32(i) ^ key) >> 8) * 2.0**-23 - 1.0 for i in range(n)]


def test_fixed_input_matches_documented_generator() -> None:
    x = fixed_input((1, 3, 5, 7), seed=3)
    assert x.dtype == torch.float32 and x.shape == (1, 3, 5, 7)
    assert x.flatten().tolist() == _reference_generator(105, 3)


def test_fixed_input_pinned_values() -> None:
    # Pinned so that a change of generator (which would silently break the C++ runner's
    # parity) fails here.
    assert fixed_input((4,), 0).tolist() == [
        0.3627777099609375,
        0.7782546281814575,
        -0.13159775733947754,
        0.6228744983673096,
    ]


def test_fixed_input_is_deterministic_and_seeded() -> None:
    a = fixed_input((1, 3, 32, 32), 0)
    assert torch.equal(a, fixed_input((1, 3, 32, 32), 0))
    assert not torch.equal(a, fixed_input((1, 3, 32, 32), 1))
    big = fixed_input((1, 3, 224, 224), 0)
    assert big.min() >= -1.0 and big.max() < 1.0
    assert abs(float(big.mean())) < 0.01 and 0.55 < float(big.std()) < 0.60  # uniform [-1, 1)


def test_fixed_input_rejects_bad_shape() -> None:
    with pytest.raises(UsageError, match="positive"):
        fixed_input((1, 0, 3))


def test_write_fixed_input_is_raw_little_endian_float32(tmp_path) -> None:
    path = write_fixed_input(tmp_path / "input.bin", (1, 3, 8, 8), seed=0)
    data = np.fromfile(path, dtype="<f4")
    assert data.size == 192
    assert np.array_equal(data, fixed_input((1, 3, 8, 8), 0).numpy().ravel())
    assert [p.name for p in tmp_path.iterdir()] == ["input.bin"]  # no temp file left
