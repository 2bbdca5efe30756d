"""Data loaders whose order and augmentation are pure functions of (seed, epoch, position).

:class:`EpochBatchSampler` yields, for one process, batches of ``(index, sample_seed)``
keys: the epoch's permutation and one augmentation seed per sample are drawn from a
generator seeded with ``(seed, epoch)``; the dataset seeds a ``random.Random`` per sample
from its key. Nothing depends on the global RNGs, the number of loader workers, or how
far an earlier process got, so resuming at (epoch, batch) replays exactly what an
uninterrupted run would have seen. Under DDP each rank takes every ``world_size``-th
sample of the same permutation (the tail that does not divide evenly is dropped), so
every rank runs the same number of steps.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mobilebench.errors import UsageError
from mobilebench.train.datasets import ImageDataset, open_dataset
from mobilebench.train.transforms import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
    eval_resize_for,
)

SampleKey = tuple[int, int | None]

# (mean, std, native image side or 0 for "any size") per dataset kind.
_DATASET_STATS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], int]] = {
    "imagefolder": (IMAGENET_MEAN, IMAGENET_STD, 0),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD, 32),
    "digits": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 32),
}


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are loaded (not part of the recipe).

    ``kind``: ``imagefolder``, ``cifar100`` or ``digits`` (see
    :mod:`mobilebench.train.datasets`). ``workers``: loader processes per training
    process (0 loads in the main process).
    """

    kind: str = "imagefolder"
    root: Path | None = None
    workers: int = 4


def preprocess_for(kind: str, input_size: int, augment: str) -> Preprocess:
    """The training pipeline for ``kind`` at ``input_size``; ``.for_eval()`` gives eval's.

    ImageNet-layout data is evaluated with the classic resize-256/centre-crop-224 (scaled
    to other sizes); 32x32 datasets are used as they are, or resized when the model wants
    another size.
    """
    mean, std, native = _DATASET_STATS[kind]
    if native == 0:
        eval_resize = eval_resize_for(input_size)
    else:
        eval_resize = 0 if input_size == native else input_size
    return Preprocess(input_size, mean, std, augment, eval_resize)


class PreprocessedDataset(Dataset):
    """Indexes with a :data:`SampleKey`; returns ``(image tensor, label)``."""

    def __init__(self, dataset: ImageDataset, preprocess: Preprocess) -> None:
        self.dataset = dataset
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, int]:
        index, seed = key
        rng = random.Random(seed) if seed is not None else None
        return self.preprocess(self.dataset.image(index), rng), self.dataset.label(index)


class EpochBatchSampler:
    """Batches of :data:`SampleKey` for one rank; call :meth:`set_epoch` before iterating.

    Training (``shuffle=True``): a fresh permutation and augmentation seeds per epoch,
    incomplete last batch dropped. Evaluation (``shuffle=False``): dataset order, no
    augmentation seed, every sample exactly once over all ranks (ranks may differ by one
    sample; :func:`mobilebench.train.evaluate.evaluate` sums counts, so nothing is padded).
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0
        if shuffle and len(self) == 0:
            raise UsageError(
                f"{num_samples} training images cannot fill one batch of {batch_size} per process "
                f"on {world_size} process(es); lower the batch size"
            )

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate ``epoch`` from batch ``start_batch`` on (to resume mid-epoch)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _keys(self) -> list[SampleKey]:
        if not self.shuffle:
            return [(int(i), None) for i in range(self.rank, self.num_samples, self.world_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.num_samples)
        seeds = rng.integers(0, 2**63 - 1, size=self.num_samples)
        usable = self.num_samples - self.num_samples % self.world_size
        picked = range(self.rank, usable, self.world_size)
        return [(int(order[p]), int(seeds[p])) for p in picked]

    def __len__(self) -> int:
        if self.shuffle:
            return (self.num_samples // self.world_size) // self.batch_size
        mine = len(range(self.rank, self.num_samples, self.world_size))
        return -(-mine // self.batch_size)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        keys = self._keys()
        for b in range(self.start_batch, len(self)):
            yield keys[b * self.batch_size : (b + 1) * self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "start_batch": self.start_batch}


def make_loader(
    dataset: ImageDataset,
    preprocess: Preprocess,
    sampler: EpochBatchSampler,
    *,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """A loader over ``sampler``'s batches; workers persist across epochs."""
    return DataLoader(
        PreprocessedDataset(dataset, preprocess),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        # A private generator: creating an iterator must not draw from the global torch RNG.
        generator=torch.Generator().manual_seed(sampler.seed),
    )


def open_splits(
    config: DataConfig, train_split: str = "train", eval_split: str = "val"
) -> tuple[ImageDataset, ImageDataset]:
    """The training and held-out datasets, checked to share one class list."""
    train = open_dataset(config.kind, config.root, train_split)
    held_out = open_dataset(config.kind, config.root, eval_split)
    if list(train.classes) != list(held_out.classes):
        missing = sorted(set(train.classes) ^ set(held_out.classes))[:5]
        raise UsageError(
            f"the {train_split} and {eval_split} splits have different classes "
            f"({len(train.classes)} vs {len(held_out.classes)}; e.g. {', '.join(missing) or 'a different order'})"
        )
    return train, held_out
