"""fixed_input (the cross-language parity input) and calibration image loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import fixed_input, write_fixed_input
from mobilebench.export.inputs import IMAGENET_MEAN, IMAGENET_STD, find_images, load_image


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


def test_calibration_folder_without_images_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(UsageError, match="holds no images"):
        find_images(tmp_path, limit=10)
    with pytest.raises(UsageError, match="does not exist"):
        find_images(tmp_path / "missing", limit=10)


def test_calibration_images_are_cropped_and_normalised(tmp_path) -> None:
    color = (200, 30, 90)
    Image.new("RGB", (300, 200), color).save(tmp_path / "b.png")
    Image.new("L", (64, 96), 128).save(tmp_path / "a.JPG")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (50, 50), (0, 0, 0)).save(tmp_path / "sub" / "c.bmp")
    folder = find_images(tmp_path, limit=2)
    assert [p.name for p in folder.files] == ["a.JPG", "b.png"] and folder.total_found == 3

    x = load_image(tmp_path / "b.png", height=64, width=64)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    expected = [(c / 255 - m) / s for c, m, s in zip(color, IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.tensor(expected), atol=1e-3)
    assert load_image(tmp_path / "a.JPG", height=48, width=48).shape == (1, 3, 48, 48)  # grayscale -> RGB
    assert load_image(tmp_path / "b.png", height=32, width=80).shape == (1, 3, 32, 80)  # non-square input


def test_unreadable_calibration_image_names_the_file(tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not really a jpeg")
    with pytest.raises(MobilebenchError, match="broken.jpg"):
        load_image(bad, height=64, width=64)
