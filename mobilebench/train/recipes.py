"""Training recipes: every hyper-parameter of a run, as one frozen dataclass.

The built-in recipes (``RECIPES``) are data, in ``recipes.toml`` beside this module,
each with a comment on where its values come from: ``imagenet`` (the paper's
EfficientNet-style recipe: RMSProp with TensorFlow semantics, EMA of the weights),
``cifar100`` (the paper's SGD recipe) and ``digits`` (not from the paper: a one-minute
smoke test for ``--dataset digits``).

``batch_size`` is the total over all processes (each of N processes takes
``batch_size / N``); ``lr`` is the peak learning rate for that total batch and is not
rescaled when the batch size is changed. Recipes are overridden from a TOML file
(``--config``, flat ``key = value`` pairs) and ``--set key=value`` (values in TOML syntax,
bare words as strings); unknown keys and ill-typed values are errors.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilebench.errors import UsageError
from mobilebench.tomlconf import TomlFile, read_table, read_toml
from mobilebench.train.bias_loss import NORMALIZATIONS
from mobilebench.train.transforms import AUGMENTATIONS

OPTIMIZERS = ("rmsprop_tf", "sgd")
LR_SCHEDULES = ("exponential_step", "multistep")
LOSSES = ("ce", "bias")
AMP_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class Recipe:
    """All hyper-parameters of a training run (the built-in values: ``recipes.toml``)."""

    name: str
    epochs: int
    batch_size: int  # total over all processes
    optimizer: str  # one of OPTIMIZERS
    lr: float  # peak, for batch_size
    momentum: float
    weight_decay: float
    lr_schedule: str  # one of LR_SCHEDULES
    input_size: int  # side of the square training crop, pixels
    augment: str  # one of transforms.AUGMENTATIONS
    nesterov: bool = False
    decay_norm_and_bias: bool = True  # False: weight decay on >= 2-d weights only
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    warmup_epochs: float = 0.0
    warmup_lr: float = 1e-6
    lr_decay: float = 0.1  # factor per decay step
    lr_decay_epochs: float = 1.0  # exponential_step: epochs between decays
    lr_milestones: tuple[int, ...] = ()  # multistep: epochs at which lr *= lr_decay
    ema_decay: float = 0.0  # per optimizer step; 0 disables the EMA
    bn_momentum: float = 0.1  # PyTorch convention (TF's 0.99 is 0.01 here)
    loss: str = "ce"  # one of LOSSES
    bias_alpha: float = 0.3
    bias_beta: float = 0.3
    bias_normalization: str = "batch"  # one of bias_loss.NORMALIZATIONS
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    amp_dtype: str = "float16"  # float16 uses a gradient scaler; bfloat16 does not
    channels_last: bool = True  # on CUDA
    eval_every_epochs: int = 1

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_choice("augment", self.augment, AUGMENTATIONS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("bias_normalization", self.bias_normalization, NORMALIZATIONS)
        _check_choice("amp_dtype", self.amp_dtype, AMP_DTYPES)
        for key in ("epochs", "batch_size", "input_size", "eval_every_epochs"):
            if getattr(self, key) < 1:
                raise UsageError(f"recipe {key} must be at least 1, got {getattr(self, key)}")
        for key in ("lr", "lr_decay"):
            if not getattr(self, key) > 0:
                raise UsageError(f"recipe {key} must be positive, got {getattr(self, key)}")
        for key in ("momentum", "weight_decay", "warmup_epochs", "warmup_lr", "rmsprop_eps"):
            if getattr(self, key) < 0:
                raise UsageError(f"recipe {key} must not be negative, got {getattr(self, key)}")
        for key in ("ema_decay", "rmsprop_decay"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise UsageError(f"recipe {key} must be in [0, 1), got {getattr(self, key)}")
        if not 0.0 < self.bn_momentum <= 1.0:
            raise UsageError(f"recipe bn_momentum must be in (0, 1], got {self.bn_momentum}")
        if self.lr_schedule == "exponential_step" and not self.lr_decay_epochs > 0:
            raise UsageError(f"recipe lr_decay_epochs must be positive, got {self.lr_decay_epochs}")
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise UsageError(f"recipe lr_milestones must be increasing, got {list(self.lr_milestones)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (tuples as lists): for TOML, JSON and checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "recipe") -> Recipe:
        """A recipe from a mapping of its fields (e.g. read back from a checkpoint).

        Fields with a default may be absent (a checkpoint written before they existed).
        """
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values and f.default is dataclasses.MISSING]
        if missing:
            raise UsageError(f"{source} lacks recipe keys {', '.join(missing)}")
        return cls(**_overrides(TomlFile(source, "", dict(values)), values))


def _check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"recipe {key} must be one of {', '.join(choices)}, not {value!r}")


RECIPES_FILE = Path(__file__).with_name("recipes.toml")


def _builtin_recipes() -> dict[str, Recipe]:
    doc = read_toml(RECIPES_FILE, what="built-in recipes")
    return {
        name: Recipe(name=name, **read_table(doc, table, Recipe, name, label="recipe "))
        for name, table in doc.data.items()
    }


RECIPES: dict[str, Recipe] = _builtin_recipes()


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None


def _overrides(doc: TomlFile, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against the recipe's fields (:mod:`mobilebench.tomlconf`)."""
    return read_table(doc, dict(values), Recipe, label="recipe ")


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any], *, source: str) -> Recipe:
    """``recipe`` with ``overrides`` (already parsed values) applied; unknown keys or bad
    values raise a UsageError naming ``source``."""
    return dataclasses.replace(recipe, **_overrides(TomlFile(source, "", dict(overrides)), overrides))


def parse_set_option(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``; the value is read as TOML, else a bare string.

    ``lr=0.1`` gives 0.1, ``amp=false`` False, ``lr_milestones=[30,60]`` a list,
    ``optimizer=sgd`` the string ``"sgd"``.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise UsageError(f"--set expects key=value, got {text!r}")
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return key, raw


def load_config_file(path: str | Path) -> tuple[TomlFile, dict[str, Any]]:
    """The flat ``key = value`` table of a TOML recipe file, and the file (for messages)."""
    doc = read_toml(path, what="config file")
    nested = [k for k, v in doc.data.items() if isinstance(v, dict)]
    if nested:
        raise UsageError(f"config file {path}: recipe keys are flat key = value pairs; found table(s) {', '.join(nested)}")
    return doc, doc.data


def build_recipe(
    base: str,
    *,
    config_file: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    explicit: Mapping[str, Any] | None = None,
) -> Recipe:
    """The recipe ``base`` overridden by the config file, then ``--set``, then ``explicit``.

    ``explicit`` holds dedicated CLI options (``--epochs`` etc.); None values are ignored.
    """
    recipe = get_recipe(base)
    if config_file is not None:
        doc, values = load_config_file(config_file)
        recipe = dataclasses.replace(recipe, **_overrides(doc, values))
    if sets:
        recipe = apply_overrides(recipe, dict(parse_set_option(s) for s in sets), source="--set")
    if explicit:
        recipe = apply_overrides(recipe, {k: v for k, v in explicit.items() if v is not None}, source="command line")
    return recipe


def recipe_to_toml(recipe: Recipe) -> str:
    import tomli_w

    return tomli_w.dumps(recipe.to_dict())
