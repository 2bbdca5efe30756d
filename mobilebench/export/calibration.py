"""What calibrates an int8 export: :class:`Calibration`, inputs handed to the exporter.

Static int8 quantization fixes each activation's range from the values it takes on
calibration inputs, so they should be the images the model will see, preprocessed as it
was trained. The exporter does not read datasets: callers build a :class:`Calibration`
(:mod:`mobilebench.train.calibration` does it from a dataset, an image folder or a
training checkpoint's data), and this module adds the one source that needs no data,
:func:`synthetic_calibration` (random tensors, labelled as such wherever it is reported).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mobilebench.export.inputs import fixed_input

if TYPE_CHECKING:
    import torch

#: Seeds of the synthetic calibration inputs start here (parity uses seeds from 0).
CALIBRATION_SEED_BASE = 1000
#: How many synthetic inputs calibrate a random-initialised model by default.
SYNTHETIC_CALIBRATION_INPUTS = 8


@dataclass(frozen=True)
class Calibration:
    """The inputs of an int8 calibration, and what identifies them.

    ``load()`` yields the inputs (each an N x C x H x W float32 tensor, preprocessed as
    the model expects); it is called only when the artifact is not cached. ``key`` is
    what identifies the content, cheap to compute (the artifact cache keys on it);
    ``record`` adds, for the provenance, where the data lives. ``synthetic``: random
    tensors rather than images. ``label`` describes the source in a few words.
    """

    label: str
    count: int
    key: dict[str, Any] = field(hash=False)
    record: dict[str, Any] = field(hash=False)
    load: Callable[[], Iterable[torch.Tensor]] = field(compare=False, repr=False)
    synthetic: bool = False


def synthetic_calibration(shape: Sequence[int], count: int = SYNTHETIC_CALIBRATION_INPUTS) -> Calibration:
    """``count`` :func:`~mobilebench.export.inputs.fixed_input` tensors of ``shape``
    (uniform in [-1, 1), seeds ``CALIBRATION_SEED_BASE ..``): for latency only, or for a
    model without trained weights; its activation ranges are not those of real images."""
    shape = tuple(int(d) for d in shape)
    last = CALIBRATION_SEED_BASE + count - 1
    generator = f"mobilebench.export.fixed_input seeds {CALIBRATION_SEED_BASE}..{last} (uniform [-1, 1))"
    key = {"source": "synthetic", "inputs": count, "shape": list(shape), "generator": generator}

    def load() -> Iterator[torch.Tensor]:
        for k in range(count):
            yield fixed_input(shape, CALIBRATION_SEED_BASE + k)

    return Calibration(f"{count} synthetic (random) inputs", count, key, dict(key), load, synthetic=True)


class HashingInputs:
    """Iterates a calibration's inputs once, hashing their bytes as they go by, so the
    provenance records exactly what calibrated the artifact (``sha256``, ``count``)."""

    def __init__(self, calibration: Calibration) -> None:
        self._inputs = calibration.load()
        self._digest = hashlib.sha256()
        self.count = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        for tensor in self._inputs:
            array = tensor.detach().contiguous().numpy()
            self._digest.update(f"{array.dtype}{array.shape}".encode())
            self._digest.update(array.tobytes())
            self.count += 1
            yield tensor

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

