"""Model cards: one TOML file per named model in ``models/``.

A card names an architecture from the registry, the checkpoint to load (optional: a card
without one describes a randomly initialised model, fine for latency), the input size,
and the published numbers with their source::

    arch = "skipnet_m"            # registry name, or an import path "mypkg.models:build_net"
    input_size = 224              # default: the checkpoint's (a training checkpoint), else 224
    num_classes = 1000            # default: the checkpoint's, else 1000
    checkpoint = ""               # optional path, relative to the card's folder
    description = "..."
    [options]                     # extra architecture options for create_model, or the
                                  # keyword arguments an import path's callable is called with
    [accuracy]                    # optional: dataset, top1, top5 (optional), source
    [paper]                       # optional: flops (fvcore convention), params, source

The card's name is its file stem. The cards folder is ``$MOBILEBENCH_MODELS_DIR``, else
``./models`` when the current directory has one, else the checkout's ``models/``. Cards
are checked with :mod:`mobilebench.tomlconf` against the dataclasses below: errors are
one line, ``models/x.toml:3: key must be ..., got ...``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from mobilebench import paths
from mobilebench.errors import UsageError
from mobilebench.files import write_text_atomic
from mobilebench.text import suggest
from mobilebench.tomlconf import TomlFile, parse_toml, read_table, read_toml, table_fields
from mobilebench.zoo.outside import is_import_path
from mobilebench.zoo.registry import get_model_entry, is_registered, list_models

MIN_INPUT_SIZE = 32
_PERCENT = {"min": 0, "max": 100}


@dataclass(frozen=True)
class Accuracy:
    """Top-1/top-5 accuracy in percent on ``dataset``, and where the numbers come from."""

    dataset: str
    top1: float = field(metadata=_PERCENT)
    source: str
    top5: float | None = field(default=None, metadata=_PERCENT)


@dataclass(frozen=True)
class PaperCost:
    """Published cost: ``flops`` in fvcore's convention (one multiply-add = one flop)."""

    flops: float = field(metadata={"min": 1})
    params: float = field(metadata={"min": 1})
    source: str


@dataclass(frozen=True)
class ModelCard:
    """One card. ``input_size``/``num_classes`` None: not stated (resolving takes the
    checkpoint's, else 224 and 1000); ``checkpoint`` is absolute, None = random init."""

    name: str = field(metadata={"toml": False})
    arch: str
    input_size: int | None = field(default=None, metadata={"min": MIN_INPUT_SIZE})
    num_classes: int | None = field(default=None, metadata={"min": 1})
    checkpoint: Path | None = field(default=None, metadata={"toml": False})
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    accuracy: Accuracy | None = field(default=None, metadata={"toml": False})
    paper: PaperCost | None = field(default=None, metadata={"toml": False})
    path: Path | None = field(default=None, metadata={"toml": False})  # the TOML file


@dataclass(frozen=True)
class _CardFile:
    """The keys of a card file (what :class:`ModelCard` is read from)."""

    arch: str
    input_size: int | None = field(default=None, metadata={"min": MIN_INPUT_SIZE})
    num_classes: int | None = field(default=None, metadata={"min": 1})
    checkpoint: str = ""
    description: str = ""
    options: dict = field(default_factory=dict)
    accuracy: dict | None = None
    paper: dict | None = None


def _read(doc: TomlFile, table: Any, cls: type, *keys: str) -> Any:
    """``cls`` from the TOML ``table`` at ``keys``: types checked, required keys present."""
    label = f"[{'.'.join(keys)}] " if keys else ""
    values = read_table(doc, table, cls, *keys, label=label)
    for name, spec in table_fields(cls).items():
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required and name not in values:
            raise doc.error(keys, f"{label or 'the card '}needs {name}")
    return cls(**values)


def parse_card(doc: TomlFile, path: Path) -> ModelCard:
    """Validate a parsed card file (see the module docstring); ``path`` is the file."""
    raw: _CardFile = _read(doc, doc.data, _CardFile)
    if not raw.arch:
        raise doc.error(("arch",), "arch is empty")
    return ModelCard(
        name=path.stem,
        arch=raw.arch,
        input_size=raw.input_size,
        num_classes=raw.num_classes,
        checkpoint=(path.parent / raw.checkpoint).resolve() if raw.checkpoint else None,
        description=raw.description,
        options=dict(raw.options),
        accuracy=_read(doc, raw.accuracy, Accuracy, "accuracy") if raw.accuracy is not None else None,
        paper=_read(doc, raw.paper, PaperCost, "paper") if raw.paper is not None else None,
        path=path,
    )


def cards_dir() -> Path:
    """The folder model cards are read from (see the module docstring)."""
    if env := os.environ.get("MOBILEBENCH_MODELS_DIR"):
        return Path(env).absolute()
    local = Path("models")
    if local.is_dir():
        return local.absolute()
    return paths.project_root() / "models"


def read_card(path: str | Path) -> ModelCard:
    """Parse and validate one card file (its architecture is checked against the registry).

    An import path as ``arch`` is not imported here (listing cards must not run user
    code); it is checked, with its ``[options]``, when the model is resolved. A card with
    a built-in arch and no ``[options]`` is checked without importing torch.
    """
    path = Path(path)
    doc = read_toml(path, what="model card")
    card = parse_card(doc, path)
    if is_import_path(card.arch):
        return card
    if not is_registered(card.arch):
        raise doc.error(
            ("arch",),
            f"unknown arch {card.arch!r}; {suggest(card.arch, list_models(), noun='architectures')} "
            "(a model from outside the zoo is written as an import path, package.module:callable)",
        )
    if not card.options:
        return card
    # The accepted options are the builder's signature: this imports its module.
    accepted = get_model_entry(card.arch).options
    if unknown := sorted(set(card.options) - set(accepted)):
        raise doc.error(
            ("options", unknown[0]),
            f"[options] {', '.join(unknown)} not accepted by {card.arch}; its options: {', '.join(accepted) or 'none'}",
        )
    return card


def load_cards(directory: str | Path | None = None) -> dict[str, ModelCard]:
    """Every ``*.toml`` card in ``directory`` (default :func:`cards_dir`), by name, sorted.

    A folder given explicitly (argument or ``MOBILEBENCH_MODELS_DIR``) must exist; the
    default folder may be absent (no cards).
    """
    explicit = directory is not None or bool(os.environ.get("MOBILEBENCH_MODELS_DIR"))
    folder = Path(directory) if directory is not None else cards_dir()
    if not folder.is_dir():
        if explicit:
            raise UsageError(f"model cards folder {folder} does not exist")
        return {}
    return {path.stem: read_card(path) for path in sorted(folder.glob("*.toml"))}


def scan_cards(directory: str | Path | None = None) -> tuple[dict[str, ModelCard], dict[str, str]]:
    """Like :func:`load_cards`, but a broken card does not hide the others: the cards
    that read, and the one-line error of each that did not, both by name."""
    folder = Path(directory) if directory is not None else cards_dir()
    if not folder.is_dir():
        return load_cards(directory), {}
    cards: dict[str, ModelCard] = {}
    broken: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            cards[path.stem] = read_card(path)
        except UsageError as exc:
            broken[path.stem] = str(exc)
    return cards, broken


def get_card(name: str) -> ModelCard | None:
    """The card called ``name`` in :func:`cards_dir`, or None. Only that file is parsed."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = cards_dir() / f"{name}.toml"
    return read_card(path) if path.is_file() else None


def card_names() -> list[str]:
    """Names of the cards in :func:`cards_dir` without parsing them (for suggestions)."""
    folder = cards_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def update_card_accuracy(name: str, *, dataset: str, top1: float, top5: float | None, source: str) -> ModelCard:
    """Replace the ``[accuracy]`` table of card ``name`` and rewrite the file atomically.

    The new text is checked as a card before the file is touched, and written through
    :func:`mobilebench.files.write_text_atomic`, so a crash never leaves half a card.
    TOML comments in the card are not preserved.
    """
    card = get_card(name)
    if card is None or card.path is None:
        raise UsageError(f"no model card named {name!r} in {cards_dir()}")
    accuracy: dict[str, Any] = {"dataset": dataset, "top1": float(top1), "source": source}
    if top5 is not None:
        accuracy["top5"] = float(top5)
    data = tomllib.loads(card.path.read_text(encoding="utf-8"))
    data["accuracy"] = accuracy
    # Plain keys first, tables last: TOML needs the top-level keys before any [table].
    ordered = {k: v for k, v in data.items() if not isinstance(v, dict)}
    ordered.update({k: v for k, v in data.items() if isinstance(v, dict)})
    text = tomli_w.dumps(ordered)
    parse_card(parse_toml(text, str(card.path)), card.path)  # refuse bad values first
    write_text_atomic(card.path, text)  # keeps the card's permissions
    return read_card(card.path)
