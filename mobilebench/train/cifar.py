"""CIFAR-100 from the standard python archive, read with a restricted unpickler.

The archive (``cifar-100-python.tar.gz``) holds pickles ``cifar-100-python/{train,test,meta}``
written by Python 2: dicts with byte-string keys, ``data`` a uint8 array of N x 3072
(channel-major 32x32 RGB), ``fine_labels`` a list of ints. Unpickling runs arbitrary code
when a file names arbitrary callables, so :class:`CifarUnpickler` resolves only the three
numpy globals an ndarray needs and refuses everything else.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mobilebench.errors import MobilebenchError, UsageError

ARCHIVE_DIR = "cifar-100-python"
SPLITS = {"train": "train", "test": "test", "val": "test"}

try:  # numpy >= 2 moved the implementation; the archive names the old path.
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class CifarUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_cifar_pickle(data: bytes, what: str) -> dict[str, Any]:
    """Decode one CIFAR pickle into a dict with str keys; ``what`` names it in errors."""
    try:
        raw = CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise MobilebenchError(f"{what} is not a CIFAR-100 pickle: {exc}") from None
    if not isinstance(raw, dict):
        raise MobilebenchError(f"{what} is not a CIFAR-100 pickle: it holds a {type(raw).__name__}, not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _read_member(root: Path, member: str) -> bytes:
    """Bytes of ``cifar-100-python/<member>`` from the archive or an extracted folder."""
    if root.is_file():
        try:
            with tarfile.open(root) as archive:
                handle = archive.extractfile(f"{ARCHIVE_DIR}/{member}")
                if handle is None:
                    raise KeyError(member)
                return handle.read()
        except (tarfile.TarError, KeyError) as exc:
            raise UsageError(f"{root} is not a CIFAR-100 python archive (no {ARCHIVE_DIR}/{member}): {exc}") from None
    for folder in (root / ARCHIVE_DIR, root):
        if (folder / member).is_file():
            return (folder / member).read_bytes()
    raise UsageError(
        f"no CIFAR-100 data at {root}: expected {ARCHIVE_DIR}/{member} (the extracted "
        f"cifar-100-python.tar.gz) or the archive itself"
    )


class Cifar100Dataset:
    """One split of CIFAR-100 (fine labels), in memory: 150 MB for the training set."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        if split not in SPLITS:
            raise UsageError(f"CIFAR-100 has splits train and test ('val' means test), not {split!r}")
        root = Path(root)
        member = SPLITS[split]
        batch = load_cifar_pickle(_read_member(root, member), f"{root}/{ARCHIVE_DIR}/{member}")
        try:
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch["fine_labels"], dtype=np.int64)
        except (KeyError, ValueError) as exc:
            raise MobilebenchError(f"{root}/{ARCHIVE_DIR}/{member} lacks CIFAR-100 data/fine_labels: {exc}") from None
        if len(data) != len(labels):
            raise MobilebenchError(f"{root}/{ARCHIVE_DIR}/{member}: {len(data)} images but {len(labels)} labels")
        self.images = np.ascontiguousarray(data.transpose(0, 2, 3, 1))  # N x 32 x 32 x 3
        self.labels = labels
        self.classes = self._class_names(root)

    @staticmethod
    def _class_names(root: Path) -> list[str]:
        try:
            meta = load_cifar_pickle(_read_member(root, "meta"), f"{root}/{ARCHIVE_DIR}/meta")
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta["fine_label_names"]]
        except (UsageError, KeyError):
            names = []
        return names if len(names) == 100 else [str(i) for i in range(100)]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])

    def label(self, index: int) -> int:
        return int(self.labels[index])
