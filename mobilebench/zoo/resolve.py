"""The one place that turns a user's model NAME into something buildable.

Used by ``flops``, ``export``, ``profile`` and ``eval``. A NAME is, in this order:

1. a model card in the cards folder (``skipnet_m`` -> ``models/skipnet_m.toml``); its
   ``arch`` is a registry name or an import path (form 3);
2. a registry name (``mobilenet_v3_small``), randomly initialised unless a checkpoint
   is given;
3. an import path ``package.module:callable`` returning an ``nn.Module`` (called with
   the card's ``[options]``; a ``--checkpoint`` is loaded into what it returns);
4. a ``.pt2`` file written by ``torch.export.save`` (a program with fixed input shape);
5. a ready ``.pte`` (ExecuTorch) or ``.onnx`` file, profiled as it is;
6. a path to a checkpoint file, together with ``arch=`` naming its architecture.

Forms 3-5 are models from outside the zoo; :mod:`mobilebench.zoo.outside` loads and
checks them. ``ResolvedModel.kind`` says which form it is: ``"zoo"`` (1, 2, 6, or a card
naming a registry architecture), ``"import"`` (3, or a card whose arch is an import
path), ``"program"`` (4) or ``"artifact"`` (5).

What the fields hold for each kind (results and tables show ``name``; the store keys
runs on ``checkpoint_sha256``, the artifact cache on :meth:`ResolvedModel.weights_identity`):

- zoo: ``name`` = card, registry name or checkpoint stem; ``arch`` = registry name;
  ``checkpoint_sha256`` = the checkpoint file's, None for random init.
- import: ``name`` = card name or the import path; ``arch`` = the import path;
  ``checkpoint_sha256`` = the checkpoint file's, else the hash of the built state_dict.
- program: ``name`` = file stem; ``arch`` = ``program:<file name>``;
  ``checkpoint_sha256`` = the .pt2 file's hash.
- artifact: ``name`` = file stem; ``arch`` = ``artifact:<file name>``;
  ``checkpoint_sha256`` = the .pte/.onnx file's hash.

Input sizes: at least 32 pixels, and a multiple of the architecture's
``input_multiple`` (16 for SkipNet: its skip blocks average-pool the 1/2-resolution map
down to exactly 1/8 and 1/16 of the input, which needs whole k x k windows). A program
or artifact fixes its own input shape; an ``input_size`` that disagrees is an error.
An import path's model is built once, at resolve time (its weights' hash is its
identity), so a callable that does not return a module fails here, with exit code 2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.zoo.cards import MIN_INPUT_SIZE, ModelCard, card_names, get_card
from mobilebench.zoo.checkpoint import file_sha256
from mobilebench.zoo.outside import (
    ARTIFACT_RUNTIMES,
    PROGRAM_SUFFIX,
    artifact_signature,
    build_from_import,
    is_import_path,
    load_program,
    module_fingerprint,
    program_signature,
)
from mobilebench.zoo.registry import input_multiple_of, is_registered, list_models, suggest

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_INPUT_SIZE = 224
# Seed for random initialisation and for example inputs: every build is bit-identical.
INIT_SEED = 0
MAX_INPUT_SIZE = 4096


KINDS = ("zoo", "import", "program", "artifact")


@dataclass(frozen=True)
class ResolvedModel:
    """A model NAME pinned down: what to build (or load), its weights by hash, its input.

    See the module docstring for what ``name``, ``arch`` and ``checkpoint_sha256`` hold
    for each ``kind``. ``source`` is the ``.pt2``/``.pte``/``.onnx`` file of a program or
    artifact; ``fixed_input_shape`` the input shape such a file fixes; ``fingerprint``
    what identifies an import path's model (:func:`~mobilebench.zoo.outside.module_fingerprint`).
    ``num_classes`` is what the network outputs: for an import path it is the card's
    (default 1000) and not passed to the callable; for a file it is read from the file
    (0 when it does not say).
    """

    name: str  # what tables show
    arch: str  # registry name, import path, "program:<file>" or "artifact:<file>"
    card: ModelCard | None
    checkpoint: Path | None
    checkpoint_sha256: str | None  # None = random initialisation (zoo only)
    input_size: int
    num_classes: int
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    kind: str = "zoo"
    source: Path | None = None
    fixed_input_shape: tuple[int, ...] | None = None
    fingerprint: dict[str, str] = field(default_factory=dict, hash=False)
    # The module an import path built at resolve time; build() hands out copies.
    _built: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """NCHW shape of one input (1x3xSxS unless a program or artifact fixes it)."""
        if self.fixed_input_shape is not None:
            return self.fixed_input_shape
        return (1, 3, self.input_size, self.input_size)

    @property
    def artifact_runtime(self) -> str | None:
        """The runtime a ready artifact is for (``executorch``/``onnx``), else None."""
        if self.kind != "artifact" or self.source is None:
            return None
        return ARTIFACT_RUNTIMES[self.source.suffix.lower()]

    def weights_identity(self) -> dict[str, Any]:
        """What identifies the weights (and, outside the zoo, the network itself): the
        artifact cache keys on it and export provenance records it."""
        if self.kind == "import":
            checkpoint = {"checkpoint_sha256": self.checkpoint_sha256} if self.checkpoint is not None else {}
            return {**self.fingerprint, **checkpoint}
        if self.kind in ("program", "artifact"):
            return {"file_sha256": self.checkpoint_sha256}
        if self.checkpoint_sha256:
            return {"checkpoint_sha256": self.checkpoint_sha256}
        return {"random_init_seed": INIT_SEED}

    def build(self) -> nn.Module:
        """The model in eval mode with its weights loaded.

        Zoo models without a checkpoint are initialised under ``torch.manual_seed(0)``
        (the global RNG state is left as it was), so every build is bit-identical; with
        one, the file must still have the hash recorded at resolve time. An import path
        gives a copy of the module built at resolve time; a program its graph module
        (``ExportedProgram.module()``); a ready artifact has no PyTorch model.
        """
        if self.kind == "artifact":
            raise MobilebenchError(
                f"{self.name} is a ready {self.artifact_runtime} artifact ({self.source}): "
                "there is no PyTorch model in it to build"
            )
        if self.kind == "program":
            return self.program().module()
        if self.kind == "import":
            if "module" not in self._built:
                self._built["module"] = self._build_import()
            return copy.deepcopy(self._built["module"])
        return self._build_zoo()

    def program(self) -> torch.export.ExportedProgram:
        """The ``torch.export`` program of a ``.pt2`` file, loaded afresh (callers may
        lower it), after checking the file still has the hash recorded at resolve time."""
        if self.kind != "program" or self.source is None:
            raise MobilebenchError(f"{self.name} is not a .pt2 program")
        self._check_unchanged(self.source)
        return load_program(self.source)

    def _check_unchanged(self, path: Path) -> None:
        sha = file_sha256(path) if path.is_file() else None
        if sha != self.checkpoint_sha256:
            raise MobilebenchError(
                f"{path} changed since it was resolved (sha256 {str(self.checkpoint_sha256)[:12]} -> {str(sha)[:12]})"
            )

    def _build_zoo(self) -> nn.Module:
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

    def _build_import(self) -> nn.Module:
        """Build again (a copy made by ``dataclasses.replace`` has no built module) and
        check that the callable produced the same weights as at resolve time."""
        model = _build_import_module(self.arch, self.options, self.checkpoint, self.checkpoint_sha256)
        expected = self.fingerprint.get("state_dict_sha256")
        if expected is not None and module_fingerprint(self.arch, model)["state_dict_sha256"] != expected:
            raise MobilebenchError(
                f"{self.arch} built different weights than when it was resolved; "
                "it must be deterministic under torch.manual_seed(0)"
            )
        return model

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        """A fixed pseudo-random input (N(0, 1), seed 0) of the model's input shape."""
        import torch

        generator = torch.Generator().manual_seed(INIT_SEED)
        return torch.randn((batch_size, *self.input_shape[1:]), generator=generator)


def _build_import_module(path: str, options: dict[str, Any], checkpoint: Path | None, sha256: str | None) -> nn.Module:
    from mobilebench.zoo.checkpoint import load_checkpoint

    model = build_from_import(path, options, seed=INIT_SEED)
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint)
        if sha256 is not None and loaded.sha256 != sha256:
            raise MobilebenchError(f"checkpoint {checkpoint} changed since it was resolved")
        model.eval()
    return model


def check_input_size(arch: str, input_size: object) -> int:
    """The input size as an int, or a UsageError saying what sizes ``arch`` accepts.

    ``arch`` is a registry name (its ``input_multiple`` applies) or an import path (any
    size in range).
    """
    multiple = input_multiple_of(arch) if not is_import_path(arch) else 1
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


_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar"}
_FILE_KIND_SUFFIXES = {PROGRAM_SUFFIX, *ARTIFACT_RUNTIMES}


def _looks_like_path(name: str) -> bool:
    suffix = Path(name).suffix.lower()
    return "/" in name or "\\" in name or suffix in _CHECKPOINT_SUFFIXES or suffix in _FILE_KIND_SUFFIXES


def resolve_model(
    name: str,
    *,
    checkpoint: Path | None = None,
    arch: str | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
) -> ResolvedModel:
    """Resolve NAME (card, registry name, import path, .pt2/.pte/.onnx file, or checkpoint
    path with ``arch``); see the module doc.

    ``checkpoint``, ``input_size`` and ``num_classes`` override the card's values.
    ``arch`` is required for a checkpoint path and must agree with a card's.
    """
    if not name:
        raise UsageError("model name is empty")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
    if arch is not None and not is_registered(arch):
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
    elif is_registered(name):
        if arch is not None and arch != name:
            raise UsageError(f"{name} is an architecture name; --arch {arch} contradicts it")
        resolved_arch, display, ckpt, what, options = name, name, checkpoint, "checkpoint", {}
        size = input_size if input_size is not None else DEFAULT_INPUT_SIZE
        classes = num_classes if num_classes is not None else 1000
    elif is_import_path(name):
        if arch is not None:
            raise UsageError(f"{name} is an import path; --arch only applies to checkpoint files")
        resolved_arch, display, ckpt, what, options = name, name, checkpoint, "checkpoint", {}
        size = input_size if input_size is not None else DEFAULT_INPUT_SIZE
        classes = num_classes if num_classes is not None else 1000
    elif Path(name).suffix.lower() in _FILE_KIND_SUFFIXES:
        if arch is not None or checkpoint is not None:
            raise UsageError(f"{name} holds its own network and weights; drop --arch and --checkpoint")
        return _resolve_file(Path(name), input_size)
    elif Path(name).is_file() or _looks_like_path(name):
        if not Path(name).exists():
            raise UsageError(f"{name} does not exist (it looks like a file path, not a model card or architecture)")
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
        raise UsageError(f"unknown model {name!r} (not a model card, architecture, import path or file); "
                         f"{suggest(name, candidates)}")

    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {classes!r}")
    size = check_input_size(resolved_arch, size)
    ckpt_path, sha = _checkpoint_file(ckpt, what) if ckpt is not None else (None, None)
    if is_import_path(resolved_arch):
        return _resolve_import(resolved_arch, display, card, ckpt_path, sha, size, classes, options)
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


def _resolve_import(
    path: str,
    display: str,
    card: ModelCard | None,
    checkpoint: Path | None,
    checkpoint_sha256: str | None,
    input_size: int,
    num_classes: int,
    options: dict[str, Any],
) -> ResolvedModel:
    """Build the import path's module now: its weights' hash is its identity."""
    model = _build_import_module(path, options, checkpoint, checkpoint_sha256)
    fingerprint = module_fingerprint(path, model)
    resolved = ResolvedModel(
        name=display,
        arch=path,
        card=card,
        checkpoint=checkpoint,
        checkpoint_sha256=checkpoint_sha256 or fingerprint["state_dict_sha256"],
        input_size=input_size,
        num_classes=num_classes,
        options=options,
        kind="import",
        fingerprint=fingerprint,
    )
    resolved._built["module"] = model
    return resolved


def _resolve_file(path: Path, input_size: int | None) -> ResolvedModel:
    """A ``.pt2`` program or a ready ``.pte``/``.onnx`` artifact, its input shape read
    from the file (and checked against ``input_size`` when one is asked for)."""
    if not path.is_file():
        what = "is a folder, not a file" if path.exists() else "does not exist"
        raise UsageError(f"{path} {what}")
    path = path.resolve()
    sha = file_sha256(path)
    if path.suffix.lower() == PROGRAM_SUFFIX:
        kind = "program"
        signature = program_signature(path, load_program(path), input_size)
    else:
        kind = "artifact"
        signature = artifact_signature(path, input_size)
    return ResolvedModel(
        name=path.stem,
        arch=f"{kind}:{path.name}",
        card=None,
        checkpoint=None,
        checkpoint_sha256=sha,
        input_size=signature.input_shape[-2],
        num_classes=signature.num_classes,
        kind=kind,
        source=path,
        fixed_input_shape=signature.input_shape,
    )
