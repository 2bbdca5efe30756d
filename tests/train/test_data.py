"""Transforms (torchvision's geometry), CIFAR-100 reading, datasets and resumable samplers."""

from __future__ import annotations

import io
import os
import pickle
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.train.cifar import Cifar100Dataset
from mobilebench.train.data import EpochBatchSampler, make_loader, preprocess_for
from mobilebench.train.datasets import DigitsDataset, ImageFolderDataset
from mobilebench.train.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CenterCrop,
    RandomCropWithPadding,
    RandomResizedCrop,
    ResizeShorter,
)


def coordinate_image(width: int, height: int) -> Image.Image:
    """R = x, G = y (mod 256): any crop reveals its offset."""
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    array = np.stack([xs % 256, ys % 256, np.full_like(xs, 7)], axis=-1).astype(np.uint8)
    return Image.fromarray(array)


# -- transforms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [((300, 200), (384, 256)), ((333, 500), (256, 384)), ((500, 333), (384, 256)), ((256, 256), (256, 256))],
)
def test_resize_shorter_side_like_torchvision(size: tuple[int, int], expected: tuple[int, int]) -> None:
    img = coordinate_image(*size)
    out = ResizeShorter(256)(img)
    assert out.size == expected
    if size == (256, 256):
        assert out is img  # torchvision returns the image untouched when it already fits
    else:
        # PIL bilinear with antialiasing, exactly.
        assert np.array_equal(np.asarray(out), np.asarray(img.resize(expected, Image.BILINEAR)))


@pytest.mark.parametrize(("width", "left"), [(257, 16), (258, 17), (259, 18), (224, 0)])
def test_center_crop_rounds_like_torchvision(width: int, left: int) -> None:
    # (257 - 224) / 2 = 16.5 rounds half-to-even to 16; 17.5 rounds to 18.
    out = np.asarray(CenterCrop(224)(coordinate_image(width, 230)))
    assert out.shape == (224, 224, 3)
    assert out[0, 0, 0] == left and out[0, 0, 1] == 3  # top: round(6 / 2) = 3


def test_center_crop_pads_small_images_with_zeros() -> None:
    out = np.asarray(CenterCrop(8)(coordinate_image(4, 10)))
    assert out.shape == (8, 8, 3)
    assert (out[:, :2] == 0).all() and (out[:, 6:] == 0).all()
    assert out[0, 2, 0] == 0 and out[0, 3, 0] == 1  # the original columns 0..3 sit at 2..5


def test_eval_pipeline_matches_resize_crop_normalise() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8))
    tensor = preprocess_for("imagefolder", 224, "inception").for_eval()(img)

    resized = np.asarray(img.resize((341, 256), Image.BILINEAR), dtype=np.float32) / 255  # int(256 * 500 / 375)
    top, left = int(round((256 - 224) / 2)), int(round((341 - 224) / 2))
    crop = resized[top : top + 224, left : left + 224]
    expected = (crop - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(IMAGENET_STD, dtype=np.float32)
    assert tensor.shape == (3, 224, 224) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)


def test_random_resized_crop_boxes() -> None:
    crop = RandomResizedCrop(224)
    areas = []
    for seed in range(300):
        left, top, w, h = crop.box(500, 375, random.Random(seed))
        assert 0 <= left and left + w <= 500 and 0 <= top and top + h <= 375
        assert 0.08 * 500 * 375 * 0.9 <= w * h <= 500 * 375
        areas.append(w * h / (500 * 375))
        assert crop.box(500, 375, random.Random(seed)) == (left, top, w, h)  # seeded: reproducible
    assert min(areas) < 0.2 and max(areas) > 0.8  # the scale range is really used
    # Extreme aspect ratio: ten misses, then the clamped centred fallback.
    assert crop.box(1000, 10, random.Random(0)) == (493, 0, 13, 10)
    out = crop(coordinate_image(500, 375), random.Random(1))
    assert out.size == (224, 224)


def test_cifar_crop_with_padding_offsets() -> None:
    original = np.asarray(coordinate_image(32, 32)) + 1  # no zero pixels, all distinct
    padded = np.zeros((40, 40, 3), dtype=np.uint8)
    padded[4:36, 4:36] = original
    seen = set()
    for seed in range(200):
        out = np.asarray(RandomCropWithPadding(32, 4)(Image.fromarray(original), random.Random(seed)))
        matches = [
            (t, left)
            for t in range(9)
            for left in range(9)
            if np.array_equal(padded[t : t + 32, left : left + 32], out)
        ]
        assert len(matches) == 1  # a 32x32 window of the zero-padded 40x40 image
        seen.add(matches[0])
    assert len(seen) > 40  # offsets spread over the 9 x 9 possibilities


def test_training_augmentation_is_a_function_of_the_sample_seed() -> None:
    pre = preprocess_for("cifar100", 32, "cifar")
    img = coordinate_image(32, 32)
    a, b, c = pre(img, random.Random(5)), pre(img, random.Random(5)), pre(img, random.Random(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(pre(img), pre.for_eval()(img))  # no rng: no augmentation


# -- CIFAR-100 -------------------------------------------------------------------------


def cifar_pickle(obj: object) -> bytes:
    """A pickle naming numpy the way the Python 2 originals do (numpy.core.multiarray)."""
    data = pickle.dumps(obj, protocol=2 if not isinstance(obj, dict) else 3)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_cifar(root: Path, n_train: int = 6, n_test: int = 4, *, archive: bool = False) -> np.ndarray:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    members = {
        "train": {b"data": train, b"fine_labels": list(range(n_train)), b"coarse_labels": [0] * n_train},
        "test": {b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), b"fine_labels": [99] * n_test},
        "meta": {b"fine_label_names": [f"class{i}".encode() for i in range(100)]},
    }
    if archive:
        with tarfile.open(root / "cifar-100-python.tar.gz", "w:gz") as tar:
            for name, obj in members.items():
                blob = cifar_pickle(obj)
                info = tarfile.TarInfo(f"cifar-100-python/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / "cifar-100-python").mkdir(parents=True)
        for name, obj in members.items():
            (root / "cifar-100-python" / name).write_bytes(cifar_pickle(obj))
    return train


@pytest.mark.parametrize("archive", [False, True])
def test_cifar100_reads_the_python_archive(tmp_path: Path, archive: bool) -> None:
    train = write_cifar(tmp_path, archive=archive)
    assert b"cnumpy.core.multiarray\n_reconstruct" in cifar_pickle({b"a": np.zeros(2, np.uint8)})
    root = tmp_path / "cifar-100-python.tar.gz" if archive else tmp_path
    ds = Cifar100Dataset(root, "train")
    assert len(ds) == 6 and ds.label(3) == 3 and ds.classes[5] == "class5"
    pixels = np.asarray(ds.image(2))
    # Rows are channel-major: 1024 red values, then green, then blue, each row by row.
    assert pixels[1, 2].tolist() == [train[2][34], train[2][1024 + 34], train[2][2048 + 34]]
    test = Cifar100Dataset(root, "val")  # 'val' is the test split
    assert len(test) == 4 and test.label(0) == 99


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_cifar_pickle_is_refused(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    exploit = Exploit()
    exploit.marker = marker  # type: ignore[attr-defined]
    (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps({b"data": exploit}))
    with pytest.raises(MobilebenchError, match=r"not a CIFAR-100 pickle: refusing to load (posix|os)\.system"):
        Cifar100Dataset(tmp_path, "train")
    assert not marker.exists()
    (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(MobilebenchError, match="holds a list"):
        Cifar100Dataset(tmp_path, "train")


def test_cifar100_missing_data_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no CIFAR-100 data"):
        Cifar100Dataset(tmp_path, "train")
    with pytest.raises(UsageError, match="splits train and test"):
        Cifar100Dataset(tmp_path, "holdout")


# -- folders, digits -------------------------------------------------------------------


def test_image_folder_layout(tmp_path: Path) -> None:
    for cls, n in (("b_dog", 2), ("a_cat", 3)):
        (tmp_path / "val" / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (10, 8), (i, 0, 0)).save(tmp_path / "val" / cls / f"{i}.png")
    (tmp_path / "val" / "a_cat" / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path, "val")
    assert ds.classes == ["a_cat", "b_dog"] and len(ds) == 5
    assert [ds.label(i) for i in range(5)] == [0, 0, 0, 1, 1]
    assert ds.image(4).size == (10, 8) and ds.image(4).getpixel((0, 0)) == (1, 0, 0)
    with pytest.raises(UsageError, match="no 'train' split"):
        ImageFolderDataset(tmp_path, "train")
    (tmp_path / "val" / "b_dog" / "9.jpg").write_bytes(b"garbage")
    with pytest.raises(MobilebenchError, match="cannot read image"):
        ImageFolderDataset(tmp_path, "val").image(5)


def test_digits_split() -> None:
    train, val = DigitsDataset("train"), DigitsDataset("val")
    assert (len(train), len(val)) == (1437, 360)
    assert np.asarray(train.image(0)).shape == (32, 32, 3)
    assert sorted(set(val.labels.tolist())) == list(range(10))


# -- samplers and loaders --------------------------------------------------------------


def test_sampler_is_a_pure_function_of_seed_and_epoch() -> None:
    sampler = EpochBatchSampler(103, 10, seed=3, shuffle=True)
    sampler.set_epoch(0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert len(epoch0) == len(sampler) == 10  # incomplete last batch dropped
    assert epoch0 != epoch1
    assert len({i for batch in epoch0 for i, _ in batch}) == 100
    sampler.set_epoch(0, start_batch=4)
    assert list(sampler) == epoch0[4:]  # resuming mid-epoch replays the rest exactly
    other = EpochBatchSampler(103, 10, seed=3, shuffle=True)
    other.set_epoch(1)
    assert list(other) == epoch1


def test_sampler_shards_for_ddp() -> None:
    shards = [EpochBatchSampler(103, 5, seed=0, shuffle=True, rank=r, world_size=2) for r in range(2)]
    keys = [{i for batch in s for i, _ in batch} for s in shards]
    assert len(shards[0]) == len(shards[1]) == 10
    assert not keys[0] & keys[1]
    evals = [EpochBatchSampler(103, 10, seed=0, shuffle=False, rank=r, world_size=2) for r in range(2)]
    seen = sorted(i for s in evals for batch in s for i, seed in batch if seed is None)
    assert seen == list(range(103))  # every held-out image exactly once, no padding
    with pytest.raises(UsageError, match="cannot fill one batch"):
        EpochBatchSampler(10, 8, seed=0, shuffle=True, world_size=2)


@pytest.mark.slow
def test_loader_output_does_not_depend_on_worker_count() -> None:
    dataset = DigitsDataset("val")
    pre = preprocess_for("digits", 32, "cifar")

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = EpochBatchSampler(len(dataset), 64, seed=11, shuffle=True)
        sampler.set_epoch(2)
        return [images for images, _ in make_loader(dataset, pre, sampler, workers=workers, pin_memory=False)]

    single, multi = batches(0), batches(2)
    assert len(single) == 5
    assert all(torch.equal(a, b) for a, b in zip(single, multi, strict=True))
