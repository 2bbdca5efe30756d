"""Model cards: one TOML file per named model in ``models/``.

A card names an architecture from the registry, the checkpoint to load (optional: a card
without one describes a randomly initialised model, fine for latency), the input size,
and the published numbers with their source::

    arch = "skipnet_m"            # registry name, or an import path "mypkg.models:build_net"
    input_size = 224
    num_classes = 1000
    checkpoint = ""               # optional path, relative to the card's folder
    description = "..."
    [options]                     # extra architecture options for create_model, or the
                                  # keyword arguments an import path's callable is called with
    [accuracy]                    # optional: dataset, top1, top5 (optional), source
    [paper]                       # optional: flops (fvcore convention), params, source

The card's name is its file stem. The cards folder is ``$MOBILEBENCH_MODELS_DIR``, else
``./models`` when the current directory has one, else the checkout's ``models/``.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobilebench import paths
from mobilebench.errors import UsageError
from mobilebench.files import write_text_atomic

CARD_KEYS = {"arch", "input_size", "num_classes", "checkpoint", "description", "options", "accuracy", "paper"}
ACCURACY_KEYS = {"dataset", "top1", "top5", "source"}
PAPER_KEYS = {"flops", "params", "source"}
MIN_INPUT_SIZE = 32


@dataclass(frozen=True)
class Accuracy:
    """Top-1/top-5 accuracy in percent on ``dataset``, and where the numbers come from."""

    dataset: str
    top1: float
    top5: float | None
    source: str


@dataclass(frozen=True)
class PaperCost:
    """Published cost: ``flops`` in fvcore's convention (one multiply-add = one flop)."""

    flops: float
    params: float
    source: str


@dataclass(frozen=True)
class ModelCard:
    name: str
    arch: str
    input_size: int
    num_classes: int
    checkpoint: Path | None  # absolute; None = random initialisation
    description: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    accuracy: Accuracy | None = None
    paper: PaperCost | None = None
    path: Path | None = None  # the TOML file


def cards_dir() -> Path:
    """The folder model cards are read from (see the module docstring)."""
    if env := os.environ.get("MOBILEBENCH_MODELS_DIR"):
        return Path(env).absolute()
    local = Path("models")
    if local.is_dir():
        return local.absolute()
    return paths.project_root() / "models"


class _CardReader:
    """Validates one parsed card; every error names the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> UsageError:
        return UsageError(f"model card {self.path}: {message}")

    def check_keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {where}; "
                            f"allowed: {', '.join(sorted(allowed))}")

    def string(self, table: dict[str, Any], key: str, where: str, *, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(f"{where or 'the card '}needs {key} = \"...\"")
        if not isinstance(value, str):
            raise self.fail(f"{where}{key} must be a string, got {value!r}")
        return value

    def number(self, table: dict[str, Any], key: str, where: str, *, low: float, high: float = math.inf,
               required: bool = True) -> float | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where or 'the card '}needs {key}")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            bounds = f"in [{low:g}, {high:g}]" if high != math.inf else f">= {low:g}"
            raise self.fail(f"{where}{key} must be a number {bounds}, got {value!r}")
        return float(value)

    def integer(self, table: dict[str, Any], key: str, *, default: int, low: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{key} must be an integer >= {low}, got {value!r}")
        return value

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any] | None:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.fail(f"{key} must be a table ([{key}]), got {value!r}")
        return value

    def accuracy(self, acc: dict[str, Any]) -> Accuracy:
        self.check_keys(acc, ACCURACY_KEYS, "[accuracy]")
        return Accuracy(
            dataset=self.string(acc, "dataset", "[accuracy] "),
            top1=self.number(acc, "top1", "[accuracy] ", low=0, high=100),
            top5=self.number(acc, "top5", "[accuracy] ", low=0, high=100, required=False),
            source=self.string(acc, "source", "[accuracy] "),
        )

    def read(self) -> ModelCard:
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise self.fail(f"not valid TOML ({exc})") from None
        except UnicodeDecodeError:
            raise self.fail("not UTF-8 text") from None
        self.check_keys(data, CARD_KEYS, "the card")
        arch = self.string(data, "arch", "")
        if not arch:
            raise self.fail("arch is empty")
        checkpoint_text = self.string(data, "checkpoint", "", default="")
        checkpoint = (self.path.parent / checkpoint_text).resolve() if checkpoint_text else None

        acc = self.table(data, "accuracy")
        accuracy = self.accuracy(acc) if acc is not None else None
        paper = None
        if (cost := self.table(data, "paper")) is not None:
            self.check_keys(cost, PAPER_KEYS, "[paper]")
            paper = PaperCost(
                flops=self.number(cost, "flops", "[paper] ", low=1),
                params=self.number(cost, "params", "[paper] ", low=1),
                source=self.string(cost, "source", "[paper] "),
            )
        return ModelCard(
            name=self.path.stem,
            arch=arch,
            input_size=self.integer(data, "input_size", default=224, low=MIN_INPUT_SIZE),
            num_classes=self.integer(data, "num_classes", default=1000, low=1),
            checkpoint=checkpoint,
            description=self.string(data, "description", "", default=""),
            options=dict(self.table(data, "options") or {}),
            accuracy=accuracy,
            paper=paper,
            path=self.path,
        )


def read_card(path: str | Path) -> ModelCard:
    """Parse and validate one card file (its architecture is checked against the registry).

    An import path as ``arch`` is not imported here (listing cards must not run user
    code); it is checked, with its ``[options]``, when the model is resolved. A card with
    a built-in arch and no ``[options]`` is checked without importing torch.
    """
    from mobilebench.zoo.outside import is_import_path
    from mobilebench.zoo.registry import get_model_entry, is_registered, list_models, suggest

    path = Path(path)
    card = _CardReader(path).read()
    if is_import_path(card.arch):
        return card
    if not is_registered(card.arch):
        raise UsageError(
            f"model card {path}: unknown arch {card.arch!r}; {suggest(card.arch, list_models())} "
            "(a model from outside the zoo is written as an import path, package.module:callable)"
        )
    if not card.options:
        return card
    # The accepted options are the builder's signature: this imports its module.
    accepted = get_model_entry(card.arch).options
    if unknown := sorted(set(card.options) - set(accepted)):
        raise UsageError(
            f"model card {path}: [options] {', '.join(unknown)} not accepted by {card.arch}; "
            f"its options: {', '.join(accepted) or 'none'}"
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

    The file is written to a temporary file in the same folder and moved over the card,
    so a crash never leaves half a card. TOML comments in the card are not preserved.
    """
    import tomli_w

    card = get_card(name)
    if card is None or card.path is None:
        raise UsageError(f"no model card named {name!r} in {cards_dir()}")
    accuracy: dict[str, Any] = {"dataset": dataset, "top1": top1, "source": source}
    if top5 is not None:
        accuracy["top5"] = top5
    _CardReader(card.path).accuracy(accuracy)  # refuse bad values before touching the file
    data = tomllib.loads(card.path.read_text(encoding="utf-8"))
    data["accuracy"] = {k: float(v) if k in ("top1", "top5") else v for k, v in accuracy.items()}
    # Plain keys first, tables last: TOML needs the top-level keys before any [table].
    ordered = {k: v for k, v in data.items() if not isinstance(v, dict)}
    ordered.update({k: v for k, v in data.items() if isinstance(v, dict)})
    write_text_atomic(card.path, tomli_w.dumps(ordered))  # keeps the card's permissions
    return read_card(card.path)
