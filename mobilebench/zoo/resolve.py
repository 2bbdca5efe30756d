"""The one place that turns a user's model NAME into something buildable.

Used by ``flops``, ``export``, ``profile`` and ``eval``. A NAME is, in this order:

1. a model card in the cards folder (``skipnet_m`` -> ``models/skipnet_m.toml``);
2. a registry name (``mobilenet_v3_small``), randomly initialised unless a checkpoint
   is given;
3. a path to a checkpoint file, together with ``arch=`` naming its architecture.

Input sizes: at least 32 pixels, and a multiple of the architecture's
``input_multiple`` (16 for SkipNet: its skip blocks average-pool the 1/2-resolution map
down to exactly 1/8 and 1/16 of the input, which needs whole k x k windows).

``ResolvedModel.kind`` says what the NAME pointed at; only ``"zoo"`` (a registry
architecture, possibly via a card or a checkpoint path) exists so far. Other kinds
(an import path ``pkg.mod:callable``, a ``.pt2`` program, a ready ``.pte``/``.onnx``
artifact) are meant to be added here as further branches of :func:`resolve_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.zoo.cards import MIN_INPUT_SIZE, ModelCard, card_names, get_card
from mobilebench.zoo.checkpoint import file_sha256
from mobilebench.zoo.registry import get_model_entry, list_models, suggest

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_INPUT_SIZE = 224
# Seed for random initialisation and for example inputs: every build is bit-identical.
INIT_SEED = 0
MAX_INPUT_SIZE = 4096


@dataclass(frozen=True)
class ResolvedModel:
    """A model NAME pinned down: architecture, weights (by hash), input size, options."""

    name: str  # card name, registry name or checkpoint stem: what tables show
    arch: str  # registry name
    card: ModelCard | None
    checkpoint: Path | None
    checkpoint_sha256: str | None  # None = random initialisation
    input_size: int
    num_classes: int
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    kind: str = "zoo"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """NCHW shape of one input image."""
        return (1, 3, self.input_size, self.input_size)

    def build(self) -> nn.Module:
        """The model in eval mode with its weights loaded.

        Without a checkpoint the weights are initialised under ``torch.manual_seed(0)``
        (the global RNG state is left as it was), so every build is bit-identical. With
        one, the file must still have the hash recorded at resolve time.
        """
        import torch

        from mobilebench.zoo.checkpoint import load_checkpoint
        from mobilebench.zoo.registry import create_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = create_model(self.arch, num_classes=self.num_classes, **self.options)
        if self.checkpoint is not None:
            loaded = load_checkpoint(model, self.checkpoint)
            if loaded.sha256 != self.checkpoint_sha256:
                raise MobilebenchError(
                    f"checkpoint {self.checkpoint} changed since it was resolved "
                    f"(sha256 {self.checkpoint_sha256[:12] if self.checkpoint_sha256 else None} -> {loaded.sha256[:12]})"
                )
        return model.eval()

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        """A fixed pseudo-random input (N(0, 1), seed 0) of the model's input shape."""
        import torch

        generator = torch.Generator().manual_seed(INIT_SEED)
        return torch.randn((batch_size, *self.input_shape[1:]), generator=generator)


def check_input_size(arch: str, input_size: object) -> int:
    """The input size as an int, or a UsageError saying what sizes ``arch`` accepts."""
    multiple = get_model_entry(arch).input_multiple
    if isinstance(input_size, bool) or not isinstance(input_size, int):
        raise UsageError(f"input size must be an integer number of pixels, got {input_size!r}")
    if not MIN_INPUT_SIZE <= input_size <= MAX_INPUT_SIZE:
        raise UsageError(f"input size {input_size} is out of range: use {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels")
    if input_size % multiple:
        lower = max(MIN_INPUT_SIZE, input_size // multiple * multiple)
        raise UsageError(
            f"input size {input_size} does not suit {arch}: it needs a multiple of {multiple} "
            f"(e.g. {lower} or {lower + multiple})"
        )
    return input_size


def _checkpoint_file(path: Path, what: str) -> tuple[Path, str]:
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist" if not path.exists() else f"{what} {path} is not a file")
    return path.resolve(), file_sha256(path)


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or Path(name).suffix.lower() in {".pt", ".pth", ".bin", ".ckpt", ".tar"}


def resolve_model(
    name: str,
    *,
    checkpoint: Path | None = None,
    arch: str | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
) -> ResolvedModel:
    """Resolve NAME (card, registry name, or checkpoint path with ``arch``); see the module doc.

    ``checkpoint``, ``input_size`` and ``num_classes`` override the card's values.
    ``arch`` is required for a checkpoint path and must agree with a card's.
    """
    if not name:
        raise UsageError("model name is empty")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
    if arch is not None and arch not in list_models():
        raise UsageError(f"unknown architecture {arch!r}; {suggest(arch, list_models())}")

    card = get_card(name)
    if card is not None:
        if arch is not None and arch != card.arch:
            raise UsageError(f"model card {name} is a {card.arch}, not {arch}; drop --arch or pick another card")
        resolved_arch, display = card.arch, card.name
        ckpt = checkpoint if checkpoint is not None else card.checkpoint
        what = "checkpoint" if checkpoint is not None else f"checkpoint of model card {card.path}"
        options = dict(card.options)
        size = input_size if input_size is not None else card.input_size
        classes = num_classes if num_classes is not None else card.num_classes
    elif name in list_models():
        if arch is not None and arch != name:
            raise UsageError(f"{name} is an architecture name; --arch {arch} contradicts it")
        resolved_arch, display, ckpt, what, options = name, name, checkpoint, "checkpoint", {}
        size = input_size if input_size is not None else DEFAULT_INPUT_SIZE
        classes = num_classes if num_classes is not None else 1000
    elif Path(name).is_file() or _looks_like_path(name):
        if arch is None:
            raise UsageError(
                f"{name} looks like a checkpoint file: say which architecture it is with --arch "
                f"(one of {', '.join(list_models())})"
            )
        if checkpoint is not None:
            raise UsageError(f"{name} is already a checkpoint; do not also pass --checkpoint")
        resolved_arch, display, ckpt, what, options = arch, Path(name).stem, Path(name), "checkpoint", {}
        size = input_size if input_size is not None else DEFAULT_INPUT_SIZE
        classes = num_classes if num_classes is not None else 1000
    else:
        candidates = sorted(set(card_names()) | set(list_models()))
        raise UsageError(f"unknown model {name!r} (not a model card, architecture or checkpoint file); "
                         f"{suggest(name, candidates)}")

    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {classes!r}")
    size = check_input_size(resolved_arch, size)
    ckpt_path, sha = _checkpoint_file(ckpt, what) if ckpt is not None else (None, None)
    return ResolvedModel(
        name=display,
        arch=resolved_arch,
        card=card,
        checkpoint=ckpt_path,
        checkpoint_sha256=sha,
        input_size=size,
        num_classes=classes,
        options=options,
    )
