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

The calibration helpers turn a folder of images into ImageNet-normalised tensors
(shorter side resized to ``input_size / 0.875``, center crop, mean/std), or produce the
default synthetic calibration set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import write_bytes_atomic

if TYPE_CHECKING:
    # numpy is imported where arrays are made: a warm `mobilebench profile` imports this
    # module (through the export pipeline) but never builds an input.
    import numpy as np
    import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Evaluation-style crop: resize the shorter side to size / CROP_FRACTION, then crop.
CROP_FRACTION = 0.875


def _lowbias32(v: np.ndarray) -> np.ndarray:
    import numpy as np

    v = v.astype(np.uint32, copy=True)
    v ^= v >> np.uint32(16)
    v *= np.uint32(0x7FEB352D)
    v ^= v >> np.uint32(15)
    v *= np.uint32(0x846CA68B)
    v ^= v >> np.uint32(16)
    return v


def fixed_input_array(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """The :func:`fixed_input` values as a float32 numpy array (see the module docstring)."""
    import numpy as np

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


def synthetic_calibration(shape: Sequence[int], count: int, seed_base: int) -> Iterator[torch.Tensor]:
    """``count`` fixed inputs with seeds ``seed_base .. seed_base + count - 1``."""
    for k in range(count):
        yield fixed_input(shape, seed_base + k)


@dataclass(frozen=True)
class ImageFolder:
    """The images of a calibration folder that an export will use."""

    root: Path
    files: tuple[Path, ...]
    total_found: int


def find_images(root: Path, limit: int) -> ImageFolder:
    """The first ``limit`` image files under ``root`` (recursive, sorted by path).

    A missing folder, a file instead of a folder or a folder with no images is a
    :class:`UsageError`.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise UsageError(f"calibration folder {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"calibration path {root} is not a folder")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not found:
        raise UsageError(
            f"calibration folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            "point --calibration-dir at a folder of images or leave it out to calibrate on synthetic inputs"
        )
    return ImageFolder(root=root, files=tuple(found[:limit]), total_found=len(found))


def load_image(path: Path, *, height: int, width: int) -> torch.Tensor:
    """One image as a 1x3xHxW ImageNet-normalised float32 tensor.

    The image is scaled so that it covers ``(height, width) / CROP_FRACTION`` (the
    shorter side decides), then center-cropped to ``height`` x ``width``.
    """
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            src_w, src_h = img.size
            scale = max(height / src_h, width / src_w) / CROP_FRACTION
            new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
            img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - width) // 2, (new_h - height) // 2
            img = img.crop((left, top, left + width, top + height))
            pixels = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MobilebenchError(f"cannot read calibration image {path}: {exc}") from None
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    chw = ((pixels - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw)).unsqueeze(0)
