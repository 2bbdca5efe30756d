"""Image preprocessing for the two recipes and for evaluation, without torchvision.

Every transform takes a PIL image (RGB) and, for the random ones, a ``random.Random``
that the data pipeline seeds per sample from ``(seed, epoch, index)``. Augmentations are
therefore a pure function of those three numbers: the same on resume, with any number of
loader workers and on any number of processes.

The geometry matches torchvision's classic transforms so that published checkpoints are
evaluated on the pixels they were evaluated on:

- :class:`ResizeShorter` is ``Resize(int)``: the shorter side becomes ``size``, the longer
  ``int(size * long / short)``; PIL bilinear with its antialiasing filter.
- :class:`CenterCrop` is ``CenterCrop``: offsets ``int(round((dim - crop) / 2))``
  (Python's round-half-even), zero padding when the image is smaller than the crop.
- :class:`RandomResizedCrop` draws scale in [0.08, 1] and log-uniform aspect ratio in
  [3/4, 4/3] with ten attempts and torchvision's fallback, then resizes bilinearly.
- :class:`RandomCropWithPadding` / :class:`RandomRotation` are ``RandomCrop(32,
  padding=4)`` (zero padding) and ``RandomRotation(15)`` (nearest, fill 0, no expand).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Per-channel statistics of the CIFAR-100 training set (as in the CIFAR-100 training code
# the paper's Table 4 numbers come from).
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

AUGMENTATIONS = ("inception", "cifar", "none")


class ResizeShorter:
    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        if short == self.size:
            return img
        new_short, new_long = self.size, int(self.size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        return img.resize((new_w, new_h), Image.BILINEAR)


class CenterCrop:
    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        if w < self.size or h < self.size:
            # Pad symmetrically with zeros first (torchvision: left/top get the floor half).
            pad_w, pad_h = max(self.size - w, 0), max(self.size - h, 0)
            padded = Image.new(img.mode, (w + pad_w, h + pad_h))
            padded.paste(img, (pad_w // 2, pad_h // 2))
            img, (w, h) = padded, padded.size
        top = int(round((h - self.size) / 2.0))
        left = int(round((w - self.size) / 2.0))
        return img.crop((left, top, left + self.size, top + self.size))


class RandomResizedCrop:
    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        self.size, self.scale, self.ratio = size, scale, ratio

    def box(self, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
        """``(left, top, w, h)`` of the crop, torchvision's algorithm."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return rng.randint(0, width - w), rng.randint(0, height - h), w, h
        # Fallback: the largest centred crop with the aspect ratio clamped into range.
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            w, h = int(round(height * max(self.ratio))), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        left, top, w, h = self.box(*img.size, rng)
        # PIL crops and resizes in one pass when given the box.
        return img.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + w, top + h))


class RandomHorizontalFlip:
    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        return img.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


class RandomCropWithPadding:
    def __init__(self, size: int, padding: int) -> None:
        self.size, self.padding = size, padding

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        w, h = img.size
        padded = Image.new(img.mode, (w + 2 * self.padding, h + 2 * self.padding))
        padded.paste(img, (self.padding, self.padding))
        top = rng.randint(0, padded.size[1] - self.size)
        left = rng.randint(0, padded.size[0] - self.size)
        return padded.crop((left, top, left + self.size, top + self.size))


class RandomRotation:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        return img.rotate(rng.uniform(-self.degrees, self.degrees), resample=Image.NEAREST)


def to_normalized_tensor(img: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 HWC RGB -> float32 CHW, scaled to [0, 1], then ``(x - mean) / std``."""
    array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


@dataclass(frozen=True)
class Preprocess:
    """A complete per-image pipeline: geometry (random when ``augment``) then normalisation.

    ``augment``: ``"inception"`` (random-resized crop to ``size`` + flip, the ImageNet
    recipe), ``"cifar"`` (random crop with 4 px padding, flip, rotation in [-15, 15]
    degrees), or ``"none"``. ``eval_resize``: the shorter side before the centre crop
    (0: no resize or crop, for datasets already at ``size``).
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augment: str = "none"
    eval_resize: int = 0

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, not {self.augment!r}")

    def __call__(self, img: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        img = img.convert("RGB")
        if self.augment == "none" or rng is None:
            if self.eval_resize:
                img = CenterCrop(self.size)(ResizeShorter(self.eval_resize)(img))
        elif self.augment == "inception":
            img = RandomHorizontalFlip()(RandomResizedCrop(self.size)(img, rng), rng)
        else:  # cifar
            img = RandomCropWithPadding(self.size, padding=4)(img, rng)
            img = RandomHorizontalFlip()(img, rng)
            img = RandomRotation(15)(img, rng)
        return to_normalized_tensor(img, self.mean, self.std)

    def for_eval(self) -> Preprocess:
        return Preprocess(self.size, self.mean, self.std, "none", self.eval_resize)


def eval_resize_for(size: int) -> int:
    """The classic shorter side for a centre crop of ``size``: 256 for 224."""
    return size * 256 // 224
