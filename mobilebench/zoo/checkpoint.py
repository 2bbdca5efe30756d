"""Loading trained weights safely, whatever wrapper the training script put around them.

A checkpoint file is read with ``torch.load(weights_only=True)``: tensors and plain
containers only, never arbitrary pickled objects (a file that needs them is refused,
nothing in it is executed). Accepted shapes of the content:

- a raw state_dict (``{"features.0.0.weight": tensor, ...}``);
- a dict holding the state_dict under ``state_dict_ema``/``model_ema`` (EMA weights,
  preferred by default because the paper evaluates EMA weights), ``state_dict``,
  ``model`` or ``net``;
- either of those with every key prefixed ``module.`` (saved from DataParallel/DDP).

Keys and shapes are checked against the model before anything is copied, so a wrong
architecture gives one line naming the missing, unexpected and mis-shaped keys.

A checkpoint written by ``mobilebench train`` (format :data:`TRAINING_FORMAT`) describes
itself: :func:`read_training_description` gives its architecture, options, classes,
input size and training data, so that it can be named on its own wherever a model is.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError
from mobilebench.files import file_sha256

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The ``format`` key of the checkpoints ``mobilebench train`` writes
#: (:mod:`mobilebench.train.checkpoint` describes the whole layout).
TRAINING_FORMAT = "mobilebench-train-1"
# Where training scripts put the weights, in the order they are looked for.
EMA_KEYS = ("state_dict_ema", "model_ema")
PLAIN_KEYS = ("state_dict", "model", "net")
DATA_PARALLEL_PREFIX = "module."
# How many keys of each kind an error message names before "...".
_SHOWN = 4


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What :func:`load_checkpoint` loaded: the file, its hash and where the weights sat."""

    path: Path
    sha256: str
    wrapper_key: str | None  # None: a raw state_dict
    stripped_prefix: bool


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` a file as plain weights, turning every failure into one clear line."""
    import torch  # seconds: resolving a name with a cached artifact must not pay them

    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise MobilebenchError(f"checkpoint {path} {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" not in text or (opcode := re.search(r"Unsupported operand (\d+)", text)):
            # Not a pickle torch can read at all (random bytes, another format).
            why = f"unsupported pickle opcode {opcode.group(1)}" if opcode else text.splitlines()[0]
            raise MobilebenchError(f"checkpoint {path} is not a PyTorch weights file ({why})") from None
        found = re.search(r"GLOBAL ([\w.]*\w)", text)
        detail = f" (it references {found.group(1)})" if found else ""
        raise MobilebenchError(
            f"checkpoint {path} is not plain weights{detail}: refusing to unpickle Python objects from it; "
            "re-save the weights alone with torch.save(model.state_dict(), path)"
        ) from None
    except OSError as exc:
        raise MobilebenchError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        if isinstance(exc, EOFError):
            why = "empty or truncated"
        elif isinstance(exc, KeyError) or not str(exc):
            why = "unrecognised content"  # the legacy reader's KeyError is a meaningless number
        else:
            why = str(exc).splitlines()[0].split(". ")[0]
        raise MobilebenchError(f"checkpoint {path} is not a PyTorch weights file ({why})") from None


def _is_state_dict(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def extract_state_dict(content: Any, *, prefer_ema: bool = True, source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], str | None]:
    """The state_dict inside a loaded checkpoint and the wrapper key it sat under."""
    if _is_state_dict(content):
        return dict(content), None
    if isinstance(content, Mapping):
        order = EMA_KEYS + PLAIN_KEYS if prefer_ema else PLAIN_KEYS + EMA_KEYS
        for key in order:
            if key in content and _is_state_dict(content[key]):
                return dict(content[key]), key
        top = ", ".join(repr(k) for k in list(content)[:8])
        raise MobilebenchError(
            f"{source} holds no state_dict: its top-level keys are {top}; expected tensors by parameter name, "
            f"or a dict with them under one of {', '.join(EMA_KEYS + PLAIN_KEYS)}"
        )
    raise MobilebenchError(f"{source} holds a {type(content).__name__}, not a state_dict")


def strip_data_parallel_prefix(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """Remove a ``module.`` prefix present on every key (DataParallel/DDP checkpoints)."""
    if all(k.startswith(DATA_PARALLEL_PREFIX) for k in state_dict):
        return {k[len(DATA_PARALLEL_PREFIX):]: v for k, v in state_dict.items()}, True
    return state_dict, False


def _listing(singular: str, plural: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "")
    return f"{len(items)} {singular if len(items) == 1 else plural} ({shown})"


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Raise one line naming missing, unexpected and mis-shaped keys, if there are any.

    ``num_batches_tracked`` buffers (a BatchNorm step counter, absent from old
    checkpoints) are not required.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(_listing("missing key", "missing keys", missing))
        if unexpected:
            parts.append(_listing("unexpected key", "unexpected keys", unexpected))
        if mismatched:
            parts.append(_listing("shape mismatch", "shape mismatches", mismatched))
        raise MobilebenchError(
            f"{source} does not fit {type(model).__name__}: " + "; ".join(parts)
            + "; is it a checkpoint of this architecture and number of classes?"
        )


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Copy ``state_dict`` into ``model`` after :func:`check_state_dict` passes."""
    check_state_dict(model, state_dict, source=source)
    full = dict(state_dict)
    for key, value in model.state_dict().items():
        full.setdefault(key, value)  # only num_batches_tracked can be absent here
    model.load_state_dict(full, strict=True)


def load_checkpoint(model: nn.Module, path: str | Path, *, prefer_ema: bool = True) -> LoadedCheckpoint:
    """Load the weights in ``path`` into ``model`` (in place) and say what was loaded.

    See the module docstring for the accepted layouts. Raises :class:`MobilebenchError`
    (one line) for a missing or unreadable file, a file that is not plain weights, or
    weights that do not fit the model.
    """
    path = Path(path)
    content = read_checkpoint(path)
    state_dict, wrapper = extract_state_dict(content, prefer_ema=prefer_ema, source=f"checkpoint {path}")
    state_dict, stripped = strip_data_parallel_prefix(state_dict)
    load_state_dict_checked(model, state_dict, source=f"checkpoint {path}")
    return LoadedCheckpoint(path=path, sha256=file_sha256(path), wrapper_key=wrapper, stripped_prefix=stripped)


@dataclass(frozen=True)
class TrainingDescription:
    """What a ``mobilebench train`` checkpoint says about the network in it.

    ``classes`` are the class names in output order; ``dataset_kind``/``dataset_root``
    the data it was trained on (``digits``, ``cifar100``, ``imagefolder`` and its folder).
    """

    path: Path
    arch: str
    arch_options: dict[str, Any] = field(hash=False)
    num_classes: int
    classes: tuple[str, ...]
    input_size: int
    dataset_kind: str | None
    dataset_root: Path | None
    has_ema: bool


def read_training_description(path: str | Path) -> TrainingDescription | None:
    """The self-description of a ``mobilebench train`` checkpoint, or None for any other
    weights file (read with :func:`read_checkpoint`)."""
    path = Path(path)
    content = read_checkpoint(path)
    if not isinstance(content, Mapping) or content.get("format") != TRAINING_FORMAT:
        return None
    try:
        dataset = content.get("dataset") or {}
        description = TrainingDescription(
            path=path,
            arch=str(content["arch"]),
            arch_options=dict(content.get("arch_options") or {}),
            num_classes=int(content["num_classes"]),
            classes=tuple(str(c) for c in content.get("classes") or ()),
            input_size=int(content["input_size"]),
            dataset_kind=dataset.get("kind"),
            dataset_root=Path(dataset["root"]) if dataset.get("root") else None,
            has_ema=_is_state_dict(content.get("model_ema")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MobilebenchError(f"training checkpoint {path} is incomplete ({type(exc).__name__}: {exc})") from None
    if description.classes and len(description.classes) != description.num_classes:
        raise MobilebenchError(
            f"training checkpoint {path} lists {len(description.classes)} classes for {description.num_classes} outputs"
        )
    return description
