"""The datasets training and evaluation read, behind one small interface.

A dataset here has ``classes`` (names, index = label), ``len()``, ``image(i)`` (a PIL
RGB image) and ``label(i)``; :mod:`mobilebench.train.data` adds the per-sample
preprocessing. Kinds:

- ``imagefolder``: ImageNet layout, ``<root>/<split>/<class>/<image>``; classes are the
  sorted folder names (the usual synset order for ImageNet), images the sorted files with
  an image extension.
- ``cifar100``: the CIFAR-100 python archive (:mod:`mobilebench.train.cifar`).
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes),
  upsampled bilinearly to 32x32 RGB. Every fifth image (index % 5 == 0, 360 images) is the
  held-out ``val`` split, the rest ``train``. Small enough to train a real network to
  >90% on a laptop CPU in seconds: for smoke runs and tests, no download needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from mobilebench.errors import MobilebenchError, UsageError

DATASET_KINDS = ("imagefolder", "cifar100", "digits")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"})


class ImageDataset(Protocol):
    classes: list[str]

    def __len__(self) -> int: ...

    def image(self, index: int) -> Image.Image: ...

    def label(self, index: int) -> int: ...


class ImageFolderDataset:
    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root) / split
        if not self.root.is_dir():
            raise UsageError(f"no {split!r} split at {self.root}: expected <data>/{split}/<class>/<image> folders")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise UsageError(f"{self.root} has no class folders: expected {split}/<class>/<image>")
        files: list[bytes] = []
        labels: list[int] = []
        for label, name in enumerate(self.classes):
            found = sorted(p for p in (self.root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            files.extend(os.fsencode(p.relative_to(self.root)) for p in found)
            labels.extend([label] * len(found))
        if not files:
            raise UsageError(f"{self.root} has class folders but no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        # numpy arrays rather than lists of Path objects: loader workers are forked, and
        # touching a Python object (its reference count) copies its memory page, so a
        # list of 1.3M paths would be duplicated into every worker; an array is not.
        self.files = np.array(files, dtype=bytes)
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, index: int) -> Path:
        return self.root / os.fsdecode(self.files[index])

    def image(self, index: int) -> Image.Image:
        path = self.path(index)
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise MobilebenchError(f"cannot read image {path}: {exc}") from None

    def label(self, index: int) -> int:
        return int(self.labels[index])


class DigitsDataset:
    HELD_OUT_EVERY = 5

    def __init__(self, split: str = "train", size: int = 32) -> None:
        if split not in ("train", "val"):
            raise UsageError(f"the digits dataset has splits train and val, not {split!r}")
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise MobilebenchError("--dataset digits needs scikit-learn: pip install scikit-learn") from None
        digits = load_digits()
        held_out = np.arange(len(digits.target)) % self.HELD_OUT_EVERY == 0
        keep = held_out if split == "val" else ~held_out
        # 0..16 grey levels -> 0..255, upsampled once here rather than per epoch.
        small = (digits.images[keep] * (255.0 / 16.0)).round().astype(np.uint8)
        self.images = np.stack(
            [np.asarray(Image.fromarray(d).resize((size, size), Image.BILINEAR).convert("RGB")) for d in small]
        )
        self.labels = digits.target[keep].astype(np.int64)
        self.classes = [str(d) for d in range(10)]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])

    def label(self, index: int) -> int:
        return int(self.labels[index])


def check_dataset_kind(kind: str) -> str:
    if kind not in DATASET_KINDS:
        raise UsageError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
    return kind


def open_dataset(kind: str, root: str | Path | None, split: str) -> ImageDataset:
    """The ``split`` of a dataset of ``kind`` (see the module docs) at ``root``."""
    check_dataset_kind(kind)
    if kind == "digits":
        return DigitsDataset(split)
    if root is None:
        raise UsageError(f"--data is required for --dataset {kind}")
    if not Path(root).exists():
        raise UsageError(f"data path {root} does not exist")
    if kind == "imagefolder":
        return ImageFolderDataset(root, split)
    from mobilebench.train.cifar import Cifar100Dataset

    return Cifar100Dataset(root, split)


def held_out_split(kind: str) -> str:
    """The split a dataset is evaluated on by default."""
    return "test" if kind == "cifar100" else "val"
