"""Training checkpoints: written atomically, readable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors, numbers, strings, None, lists and dicts only: no
pickled Python objects, so loading one never runs code. The random-number generator
states are converted to tensors for that reason (:func:`capture_rng_state`).

Layout (``FORMAT``):

- ``model`` / ``model_ema`` (when the recipe keeps an EMA): state_dicts of the bare model,
  no DDP ``module.`` prefix, so :func:`mobilebench.zoo.load_checkpoint` reads them;
- ``arch``, ``arch_options``, ``num_classes``, ``classes``, ``input_size``, ``dataset``
  (``kind``, ``root``): the checkpoint's self-description, which
  :func:`mobilebench.zoo.checkpoint.read_training_description` reads, so ``eval``,
  ``export``, ``flops`` and ``profile`` take the file as a model NAME on its own;
- ``recipe`` (a dict), ``run`` (seed, deterministic, feature module), ``git_revision``;
- ``epoch`` / ``batch``: where training continues (``batch`` > 0: mid-epoch);
  ``completed_epochs``; ``world_size``;
- ``optimizer``, ``scheduler``, ``scaler``, ``loss`` (Bias Loss running minimum),
  ``sampler``; ``rank_states``: per rank, its RNG states and partial-epoch meters;
- ``metrics`` (latest evaluation) and ``best_top1``.

``best.pt`` holds the same keys minus the optimizer/scheduler/scaler/RNG states.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobilebench.errors import MobilebenchError
from mobilebench.files import atomic_writer
from mobilebench.paths import project_root
from mobilebench.zoo.checkpoint import TRAINING_FORMAT as FORMAT
from mobilebench.zoo.checkpoint import read_checkpoint
TRAINING_STATE_KEYS = ("optimizer", "scheduler", "scaler", "rank_states")


def capture_rng_state() -> dict[str, Any]:
    """This process's Python, numpy, torch and CUDA generator states, as tensors."""
    version, mt_state, gauss_next = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python_version": int(version),
        "python": torch.tensor(mt_state, dtype=torch.int64),
        "python_gauss_next": gauss_next,
        "numpy_kind": str(np_kind),
        "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(
        (state["python_version"], tuple(int(v) for v in state["python"].tolist()), state["python_gauss_next"])
    )
    np.random.set_state(
        (
            state["numpy_kind"],
            state["numpy"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_revision() -> str | None:
    """``HEAD`` of the checkout mobilebench runs from, ``+dirty`` with local changes; None outside git."""
    root = project_root()
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename over it.

    A process killed while saving leaves the previous checkpoint intact, never half a file.
    """
    with atomic_writer(path, mode=0o644) as handle:
        torch.save(obj, handle)


def load_training_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint written by :func:`save_atomic`, read with ``weights_only=True``."""
    content = read_checkpoint(path)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise MobilebenchError(
            f"{path} is not a mobilebench training checkpoint (format {FORMAT}); "
            "--resume continues only runs started by mobilebench train"
        )
    return content


def weights_only(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint without the state needed only to continue training (for best.pt)."""
    return {k: v for k, v in checkpoint.items() if k not in TRAINING_STATE_KEYS}
