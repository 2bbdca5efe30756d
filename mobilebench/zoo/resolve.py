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
6. a path to a checkpoint file: a ``mobilebench train`` checkpoint says what it is
   (architecture, options, classes, input size); any other needs ``arch=``.

Each form resolves to its own type, a :class:`ResolvedModel`:

- :class:`ZooModelRef` (1, 2, 6, a card naming a registry architecture): ``arch`` is the
  registry name, ``checkpoint_sha256`` the checkpoint file's (None: random init);
- :class:`ImportedModel` (3, a card whose arch is an import path): ``arch`` is the path;
  ``checkpoint_sha256`` the checkpoint's, else the hash of the built state_dict;
- :class:`ProgramFile` (4) and :class:`ArtifactFile` (5): ``arch`` is
  ``program:<file>`` / ``artifact:<file>``, ``checkpoint_sha256`` the file's hash.

Results and tables show ``name``; the store keys runs on ``checkpoint_sha256``, the
artifact cache on :meth:`ResolvedModel.weights_identity`.

What a training checkpoint says wins over defaults; a flag or card that contradicts
it is an error (architecture, options, class count: the weights would not fit, or
would be read as another network) or, for another input size, a warning in
:attr:`ResolvedModel.warnings` for the command to print.

Input sizes: at least 32 pixels, and a multiple of the architecture's
``input_multiple`` (16 for SkipNet: its skip blocks average-pool the 1/2-resolution map
down to exactly 1/8 and 1/16 of the input, which needs whole k x k windows). A program
fixes its own input shape; an ``input_size`` that disagrees is an error (for a ready
artifact, when the exporter reads the file). An import path's model is built once, at
resolve time (its weights' hash is its identity), so a callable that does not return a
module fails here, with exit code 2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import file_sha256
from mobilebench.text import suggest
from mobilebench.zoo.cards import MIN_INPUT_SIZE, ModelCard, card_names, get_card
from mobilebench.zoo.checkpoint import TrainingDescription, load_checkpoint, read_training_description
from mobilebench.zoo.outside import (
    ARTIFACT_RUNTIMES,
    PROGRAM_SUFFIX,
    build_from_import,
    is_import_path,
    load_program,
    module_fingerprint,
    program_signature,
)
from mobilebench.zoo.registry import create_model, input_multiple_of, is_registered, list_models

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_INPUT_SIZE = 224
DEFAULT_NUM_CLASSES = 1000
# Seed for random initialisation and for example inputs: every build is bit-identical.
INIT_SEED = 0
MAX_INPUT_SIZE = 4096


@dataclass(frozen=True, kw_only=True)
class ResolvedModel:
    """A model NAME pinned down: what to build (or load), its weights by hash, its input.

    The subclasses are the forms a NAME takes (see the module docstring); ``kind`` names
    the form in provenance records. ``num_classes`` is what the network outputs (for a
    file, what the file says; 0 when it does not say). ``training`` is the description
    of a ``mobilebench train`` checkpoint, when the weights come from one. ``warnings``
    are for the command to print (e.g. an input size other than the trained one).
    """

    kind: ClassVar[str]

    name: str  # what tables show
    arch: str
    card: ModelCard | None = None
    checkpoint: Path | None = None
    checkpoint_sha256: str | None = None
    input_size: int = DEFAULT_INPUT_SIZE
    num_classes: int = DEFAULT_NUM_CLASSES
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    training: TrainingDescription | None = None
    warnings: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """NCHW shape of one input."""
        return (1, 3, self.input_size, self.input_size)

    @property
    def random_init(self) -> bool:
        """No trained weights: a zoo architecture initialised under :data:`INIT_SEED`."""
        return False

    def weights_identity(self) -> dict[str, Any]:
        """What identifies the weights (and, outside the zoo, the network itself): the
        artifact cache keys on it and export provenance records it."""
        return {"checkpoint_sha256": self.checkpoint_sha256}

    def weights_label(self) -> str:
        """Where the weights come from, in words, for provenance records."""
        return "checkpoint"

    def build(self) -> nn.Module:
        """The model in eval mode with its weights loaded."""
        raise NotImplementedError

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        """A fixed pseudo-random input (N(0, 1), seed 0) of the model's input shape."""
        import torch

        generator = torch.Generator().manual_seed(INIT_SEED)
        return torch.randn((batch_size, *self.input_shape[1:]), generator=generator)

    def _check_unchanged(self, path: Path) -> None:
        sha = file_sha256(path) if path.is_file() else None
        if sha != self.checkpoint_sha256:
            raise MobilebenchError(
                f"{path} changed since it was resolved (sha256 {str(self.checkpoint_sha256)[:12]} -> {str(sha)[:12]})"
            )


@dataclass(frozen=True, kw_only=True)
class ZooModelRef(ResolvedModel):
    """A registry architecture, randomly initialised or with a checkpoint's weights."""

    kind: ClassVar[str] = "zoo"

    @property
    def random_init(self) -> bool:
        return self.checkpoint is None

    def weights_identity(self) -> dict[str, Any]:
        if self.checkpoint_sha256:
            return {"checkpoint_sha256": self.checkpoint_sha256}
        return {"random_init_seed": INIT_SEED}

    def weights_label(self) -> str:
        return "random-init" if self.random_init else "checkpoint"

    def bare(self) -> nn.Module:
        """The architecture built under :data:`INIT_SEED` (the global RNG state is left
        as it was), without the checkpoint's weights."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            return create_model(self.arch, num_classes=self.num_classes, **self.options)

    def build(self) -> nn.Module:
        """Bit-identical on every call; with a checkpoint, the file must still have the
        hash recorded at resolve time."""
        model = self.bare()
        if self.checkpoint is not None:
            loaded = load_checkpoint(model, self.checkpoint)
            if loaded.sha256 != self.checkpoint_sha256:
                self._check_unchanged(self.checkpoint)
        return model.eval()


@dataclass(frozen=True, kw_only=True)
class ImportedModel(ResolvedModel):
    """A network built by an import path's callable. ``fingerprint`` identifies it
    (:func:`~mobilebench.zoo.outside.module_fingerprint`); ``num_classes`` is the card's
    (default 1000) and is not passed to the callable."""

    kind: ClassVar[str] = "import"
    fingerprint: dict[str, str] = field(default_factory=dict, hash=False)
    # The module built at resolve time; build() hands out copies.
    _built: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def weights_identity(self) -> dict[str, Any]:
        checkpoint = {"checkpoint_sha256": self.checkpoint_sha256} if self.checkpoint is not None else {}
        return {**self.fingerprint, **checkpoint}

    def weights_label(self) -> str:
        return "checkpoint" if self.checkpoint is not None else f"built by {self.arch}"

    def bare(self) -> nn.Module:
        """What the callable builds (under :data:`INIT_SEED`), without the checkpoint."""
        return build_from_import(self.arch, self.options, seed=INIT_SEED)

    def build(self) -> nn.Module:
        """A copy of the module built at resolve time. A copy made by
        ``dataclasses.replace`` has none: it builds again and checks that the callable
        produced the same weights."""
        if "module" not in self._built:
            model = _build_imported(self.arch, self.options, self.checkpoint, self.checkpoint_sha256)
            expected = self.fingerprint.get("state_dict_sha256")
            if expected is not None and module_fingerprint(self.arch, model)["state_dict_sha256"] != expected:
                raise MobilebenchError(
                    f"{self.arch} built different weights than when it was resolved; "
                    "it must be deterministic under torch.manual_seed(0)"
                )
            self._built["module"] = model
        return copy.deepcopy(self._built["module"])


@dataclass(frozen=True, kw_only=True)
class ProgramFile(ResolvedModel):
    """A ``.pt2`` program: its own network, weights and (static) input shape."""

    kind: ClassVar[str] = "program"
    source: Path
    fixed_input_shape: tuple[int, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.fixed_input_shape

    def weights_identity(self) -> dict[str, Any]:
        return {"file_sha256": self.checkpoint_sha256}

    def weights_label(self) -> str:
        return ".pt2 program"

    def program(self) -> torch.export.ExportedProgram:
        """The program, loaded afresh (callers may lower it), after checking the file
        still has the hash recorded at resolve time."""
        self._check_unchanged(self.source)
        return load_program(self.source)

    def build(self) -> nn.Module:
        """The program's graph module (``ExportedProgram.module()``)."""
        return self.program().module()


@dataclass(frozen=True, kw_only=True)
class ArtifactFile(ResolvedModel):
    """A ready ``.pte``/``.onnx`` file, run as it is: there is no PyTorch model in it.

    Its input shape and class count are read from the file by the exporter
    (:func:`mobilebench.export.ready.artifact_signature`); ``input_size`` is the size
    asked for (None: whatever the file takes), checked there.
    """

    kind: ClassVar[str] = "artifact"
    source: Path
    input_size: int | None = None  # type: ignore[assignment]
    num_classes: int = 0

    @property
    def runtime(self) -> str:
        """The runtime the file is for (``executorch`` or ``onnx``)."""
        return ARTIFACT_RUNTIMES[self.source.suffix.lower()]

    @property
    def input_shape(self) -> tuple[int, ...]:
        raise MobilebenchError(
            f"{self.name}: a ready artifact's input shape is read from the file "
            "(mobilebench.export.ready.artifact_signature)"
        )

    def weights_identity(self) -> dict[str, Any]:
        return {"file_sha256": self.checkpoint_sha256}

    def weights_label(self) -> str:
        return "ready artifact"

    def check_unchanged(self) -> None:
        """Raise if the file no longer has the hash recorded at resolve time."""
        self._check_unchanged(self.source)

    def build(self) -> nn.Module:
        raise MobilebenchError(
            f"{self.name} is a ready {self.runtime} artifact ({self.source}): there is no PyTorch model in it to build"
        )


def _build_imported(path: str, options: dict[str, Any], checkpoint: Path | None, sha256: str | None) -> nn.Module:
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


_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar"}
_FILE_KIND_SUFFIXES = {PROGRAM_SUFFIX, *ARTIFACT_RUNTIMES}


def _looks_like_path(name: str) -> bool:
    suffix = Path(name).suffix.lower()
    return "/" in name or "\\" in name or suffix in _CHECKPOINT_SUFFIXES or suffix in _FILE_KIND_SUFFIXES


def _checkpoint_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist" if not path.exists() else f"{what} {path} is not a file")
    return path.resolve()


@dataclass
class _Request:
    """What the NAME, card and flags ask for, before the checkpoint has its say."""

    arch: str | None
    display: str
    card: ModelCard | None
    checkpoint: Path | None
    what: str  # how the checkpoint is named in messages
    options: dict[str, Any]
    input_size: int | None
    num_classes: int | None
    size_from: str  # who asked for input_size ("--input-size", "model card x")
    classes_from: str
    # A card's sizes when --checkpoint replaces its checkpoint: they described the
    # card's own weights, so a training checkpoint's description comes first.
    fallback_size: int | None = None
    fallback_classes: int | None = None


def resolve_model(
    name: str,
    *,
    checkpoint: Path | None = None,
    arch: str | None = None,
    input_size: int | None = None,
    num_classes: int | None = None,
) -> ResolvedModel:
    """Resolve NAME (card, registry name, import path, .pt2/.pte/.onnx file, or checkpoint
    path); see the module docstring.

    ``checkpoint``, ``input_size`` and ``num_classes`` override the card's values.
    ``arch`` names the architecture of a checkpoint that does not say, and must agree
    with a card's and a training checkpoint's.
    """
    if not name:
        raise UsageError("model name is empty")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
    if arch is not None and not is_registered(arch):
        raise UsageError(f"unknown architecture {arch!r}; {suggest(arch, list_models(), noun='architectures')}")

    card = get_card(name)
    if card is not None:
        if arch is not None and arch != card.arch:
            raise UsageError(f"model card {name} is a {card.arch}, not {arch}; drop --arch or pick another card")
        own = checkpoint is None  # the card's sizes describe its own checkpoint
        request = _Request(
            arch=card.arch,
            display=card.name,
            card=card,
            checkpoint=card.checkpoint if own else checkpoint,
            what=f"checkpoint of model card {card.path}" if own else "checkpoint",
            options=dict(card.options),
            input_size=input_size if input_size is not None or not own else card.input_size,
            num_classes=num_classes if num_classes is not None or not own else card.num_classes,
            size_from="--input-size" if input_size is not None else f"model card {card.path}",
            classes_from="--num-classes" if num_classes is not None else f"model card {card.path}",
            fallback_size=None if own else card.input_size,
            fallback_classes=None if own else card.num_classes,
        )
    elif is_registered(name) or is_import_path(name):
        if arch is not None:
            raise UsageError(
                f"{name} is an architecture name; --arch {arch} contradicts it"
                if is_registered(name)
                else f"{name} is an import path; --arch only applies to checkpoint files"
            )
        request = _Request(name, name, None, checkpoint, "checkpoint", {}, input_size, num_classes,
                           "--input-size", "--num-classes")
    elif Path(name).suffix.lower() in _FILE_KIND_SUFFIXES:
        if arch is not None or checkpoint is not None:
            raise UsageError(f"{name} holds its own network and weights; drop --arch and --checkpoint")
        return _resolve_file(Path(name), input_size)
    elif Path(name).is_file() or _looks_like_path(name):
        if not Path(name).exists():
            raise UsageError(f"{name} does not exist (it looks like a file path, not a model card or architecture)")
        if checkpoint is not None:
            raise UsageError(f"{name} is already a checkpoint; do not also pass --checkpoint")
        request = _Request(arch, Path(name).stem, None, Path(name), "checkpoint", {}, input_size, num_classes,
                           "--input-size", "--num-classes")
    else:
        candidates = sorted(set(card_names()) | set(list_models()))
        raise UsageError(
            f"unknown model {name!r} (not a model card, architecture, import path or file); "
            f"{suggest(name, candidates, noun='models')}"
        )

    ckpt_path = _checkpoint_file(request.checkpoint, request.what) if request.checkpoint is not None else None
    training = read_training_description(ckpt_path) if ckpt_path is not None else None
    warnings = _apply_training(request, training) if training is not None else ()
    if request.input_size is None:
        request.input_size = request.fallback_size
    if request.num_classes is None:
        request.num_classes = request.fallback_classes
    if request.arch is None:
        raise UsageError(
            f"{name} is not a mobilebench training checkpoint, so it does not say which architecture it is: "
            f"pass --arch (one of {', '.join(list_models())})"
        )
    classes = request.num_classes if request.num_classes is not None else DEFAULT_NUM_CLASSES
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {classes!r}")
    size = check_input_size(request.arch, request.input_size if request.input_size is not None else DEFAULT_INPUT_SIZE)
    sha = file_sha256(ckpt_path) if ckpt_path is not None else None
    fields = dict(
        name=request.display,
        arch=request.arch,
        card=request.card,
        checkpoint=ckpt_path,
        checkpoint_sha256=sha,
        input_size=size,
        num_classes=classes,
        options=request.options,
        training=training,
        warnings=warnings,
    )
    if is_import_path(request.arch):
        return _resolve_import(**fields)
    return ZooModelRef(**fields)


def _apply_training(request: _Request, training: TrainingDescription) -> tuple[str, ...]:
    """Fill ``request`` from a training checkpoint's description; contradictions that
    would misread the weights are errors, another input size is a warning."""
    where = f"{request.what} {training.path}"
    if request.arch is not None and request.arch != training.arch:
        raise UsageError(f"{where} holds a trained {training.arch}, not {request.arch}; drop --arch or fix the card")
    request.arch = training.arch
    for key, value in training.arch_options.items():
        if key in request.options and request.options[key] != value:
            raise UsageError(
                f"{where} was trained with {key}={value!r}; the model card says {key}={request.options[key]!r}"
            )
    request.options = {**training.arch_options, **request.options}
    if request.num_classes is not None and request.num_classes != training.num_classes:
        raise UsageError(
            f"{where} has {training.num_classes} classes (trained on {training.dataset_kind or 'its data'}); "
            f"{request.classes_from} says {request.num_classes}: drop it"
        )
    request.num_classes = training.num_classes
    if request.input_size is None:
        request.input_size = training.input_size
        return ()
    if request.input_size != training.input_size:
        return (
            f"{training.path.name} was trained at {training.input_size}x{training.input_size} pixels; "
            f"{request.size_from} asks for {request.input_size}",
        )
    return ()


def _resolve_import(**fields: Any) -> ImportedModel:
    """Build the import path's module now: its weights' hash is its identity."""
    model = _build_imported(fields["arch"], fields["options"], fields["checkpoint"], fields["checkpoint_sha256"])
    fingerprint = module_fingerprint(fields["arch"], model)
    fields["checkpoint_sha256"] = fields["checkpoint_sha256"] or fingerprint["state_dict_sha256"]
    resolved = ImportedModel(**fields, fingerprint=fingerprint)
    resolved._built["module"] = model
    return resolved


def _resolve_file(path: Path, input_size: int | None) -> ProgramFile | ArtifactFile:
    """A ``.pt2`` program (its input shape read from it and checked against
    ``input_size`` when one is asked for) or a ready ``.pte``/``.onnx`` artifact."""
    if not path.is_file():
        what = "is a folder, not a file" if path.exists() else "does not exist"
        raise UsageError(f"{path} {what}")
    path = path.resolve()
    sha = file_sha256(path)
    if path.suffix.lower() != PROGRAM_SUFFIX:
        return ArtifactFile(
            name=path.stem, arch=f"artifact:{path.name}", checkpoint_sha256=sha, source=path, input_size=input_size
        )
    signature = program_signature(path, load_program(path), input_size)
    return ProgramFile(
        name=path.stem,
        arch=f"program:{path.name}",
        checkpoint_sha256=sha,
        input_size=signature.input_shape[-2],
        num_classes=signature.num_classes,
        source=path,
        fixed_input_shape=signature.input_shape,
    )
