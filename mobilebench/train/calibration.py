"""int8 calibration inputs from real images, preprocessed as the model was trained.

``--calibration SPEC`` of ``export``, ``profile`` and ``eval`` is one of:

- a dataset kind (``digits``, ``cifar100``, ``imagefolder``): its ``train`` split
  (``cifar100``/``imagefolder`` at ``--data``, else where the training checkpoint's
  data was);
- a folder of images (any layout, searched recursively);
- a whole number N: N synthetic random inputs, for latency only (labelled synthetic);
- nothing: a ``mobilebench train`` checkpoint calibrates on its own training data;
  other models are left to the exporter (random-initialised ones get synthetic inputs,
  others must say).

Images are a fixed-seed sample of :data:`CALIBRATION_IMAGES` (seed
:data:`CALIBRATION_SEED`), preprocessed by the evaluation pipeline of the model's
training dataset (:func:`mobilebench.train.data.preprocess_for`): the same pixels
``mobilebench eval`` feeds. The exporter records the hash of what was fed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export.calibration import Calibration, synthetic_calibration
from mobilebench.files import file_sha256
from mobilebench.train.data import preprocess_for
from mobilebench.train.datasets import DATASET_KINDS, IMAGE_EXTENSIONS, ImageDataset, open_dataset
from mobilebench.train.transforms import Preprocess, eval_resize_for
from mobilebench.zoo.resolve import ResolvedModel

#: How many images calibrate an int8 export, and the seed that picks them.
CALIBRATION_IMAGES = 128
CALIBRATION_SEED = 0


def calibration_for(resolved: ResolvedModel, spec: str | None, *, data: Path | None = None) -> Calibration | None:
    """The calibration ``spec`` (see the module docstring) names for ``resolved``;
    ``data`` is the dataset location a ``cifar100``/``imagefolder`` spec reads."""
    training = resolved.training
    if spec is None:
        if training is None or training.dataset_kind is None:
            return None
        return dataset_calibration(resolved, training.dataset_kind, data or training.dataset_root)
    if spec.isdigit():
        count = int(spec)
        if count < 1:
            raise UsageError("--calibration N needs at least 1 input")
        return synthetic_calibration(resolved.input_shape, count)
    if spec in DATASET_KINDS:
        if data is None and training is not None and training.dataset_kind == spec:
            data = training.dataset_root
        return dataset_calibration(resolved, spec, data)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return folder_calibration(resolved, folder)
    raise UsageError(
        f"--calibration {spec}: not a dataset ({', '.join(DATASET_KINDS)}), a folder of images or a number of "
        "synthetic inputs" + (" (no such folder)" if not folder.exists() else "")
    )


def _model_preprocess(resolved: ResolvedModel, kind: str | None) -> Preprocess:
    """The evaluation pipeline of dataset ``kind`` at the model's input size."""
    return preprocess_for(kind or "imagefolder", resolved.input_size, "none").for_eval()


def _sample(count: int) -> np.ndarray:
    """The fixed-seed sample of indices (sorted) out of ``count`` images."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    return np.sort(rng.choice(count, size=min(CALIBRATION_IMAGES, count), replace=False))


def _square_input(resolved: ResolvedModel) -> None:
    shape = resolved.input_shape
    if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3]:
        raise UsageError(
            f"calibration images need a model taking square RGB images (1 x 3 x S x S); {resolved.name} takes "
            f"{'x'.join(map(str, shape))}: pass --calibration N for synthetic inputs"
        )


def dataset_calibration(resolved: ResolvedModel, kind: str, root: Path | None) -> Calibration:
    """A fixed-seed sample of the ``train`` split of dataset ``kind``."""
    _square_input(resolved)
    preprocess = _model_preprocess(resolved, kind)
    if kind != "digits" and root is None:
        raise UsageError(f"--calibration {kind} needs the dataset's location: pass --data")
    location = str(Path(root).resolve()) if root is not None else f"scikit-learn {metadata.version('scikit-learn')}"
    key = {
        "source": "dataset",
        "dataset": kind,
        "data": location,
        "split": "train",
        "images": CALIBRATION_IMAGES,
        "seed": CALIBRATION_SEED,
        "preprocessing": repr(preprocess),
    }

    def load() -> Iterator[torch.Tensor]:
        dataset: ImageDataset = open_dataset(kind, root, "train")
        for index in _sample(len(dataset)):
            yield preprocess(dataset.image(int(index))).unsqueeze(0)

    label = f"{CALIBRATION_IMAGES} {kind} training images (seed {CALIBRATION_SEED})"
    return Calibration(label, CALIBRATION_IMAGES, key, dict(key), load)


def folder_calibration(resolved: ResolvedModel, folder: Path) -> Calibration:
    """A fixed-seed sample of the images under ``folder``, resized and center-cropped
    to the input size, normalised as the model's training data was (ImageNet's
    statistics for a model that does not say)."""
    _square_input(resolved)
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not found:
        raise UsageError(
            f"calibration folder {folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "point --calibration at a folder of images, a dataset, or a number of synthetic inputs"
        )
    files = [found[i] for i in _sample(len(found))]
    kind = resolved.training.dataset_kind if resolved.training is not None else None
    stats = _model_preprocess(resolved, kind)
    preprocess = Preprocess(resolved.input_size, stats.mean, stats.std, "none", eval_resize_for(resolved.input_size))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + file_sha256(path).encode())
    key = {
        "source": "images",
        "images": len(files),
        "content_sha256": digest.hexdigest(),
        "seed": CALIBRATION_SEED,
        "preprocessing": repr(preprocess),
    }

    def load() -> Iterator[torch.Tensor]:
        for path in files:
            try:
                with Image.open(path) as img:
                    image = img.convert("RGB")
            except (OSError, UnidentifiedImageError) as exc:
                raise MobilebenchError(f"cannot read calibration image {path}: {exc}") from None
            yield preprocess(image).unsqueeze(0)

    record = {**key, "dir": str(folder.resolve()), "images_found": len(found)}
    return Calibration(f"{len(files)} images from {folder}", len(files), key, record, load)
