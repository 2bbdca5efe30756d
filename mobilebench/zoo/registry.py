"""The name registry: ``create_model("skipnet_m")`` and friends.

An architecture module registers a builder with :func:`register_model`; a builder is a
function taking keyword-only arguments (``num_classes`` plus its architecture options)
and returning an ``nn.Module``. Every module of the ``mobilebench.zoo`` package is
imported on the first full listing (or lookup of a name not yet known), so a new
architecture file dropped into ``zoo/`` registers its models without being listed anywhere.

:data:`BUILTIN_MODELS` names the built-in models and their modules so that resolving a
name with a cached artifact need not import torch (seconds); ``tests/zoo/test_lazy_import.py``
checks it against the real registrations.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.text import suggest
from mobilebench.zoo.checkpoint import load_checkpoint

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its name, builder and the options the builder accepts."""

    name: str
    builder: Builder
    description: str
    input_multiple: int = 1  # the input side must be a multiple of this (SkipNet: 16)

    @property
    def options(self) -> dict[str, Any]:
        """Architecture options (name -> default), ``num_classes`` excluded."""
        params = inspect.signature(self.builder).parameters
        return {
            name: p.default
            for name, p in params.items()
            if name != "num_classes" and p.kind is inspect.Parameter.KEYWORD_ONLY
        }


@dataclass(frozen=True)
class BuiltinModel:
    """A built-in name as known without importing its module: where it is registered."""

    module: str
    input_multiple: int = 1


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "ghostnet": BuiltinModel("mobilebench.zoo.ghostnet"),
    "ghostnet_130": BuiltinModel("mobilebench.zoo.ghostnet"),
    "mnasnet1_0": BuiltinModel("mobilebench.zoo.mnasnet"),
    "mnasnet_a1": BuiltinModel("mobilebench.zoo.mnasnet"),
    "mobilenet_v2": BuiltinModel("mobilebench.zoo.mobilenetv2"),
    "mobilenet_v3_large": BuiltinModel("mobilebench.zoo.mobilenetv3"),
    "mobilenet_v3_large_125": BuiltinModel("mobilebench.zoo.mobilenetv3"),
    "mobilenet_v3_small": BuiltinModel("mobilebench.zoo.mobilenetv3"),
    "skipnet_l": BuiltinModel("mobilebench.zoo.skipnet", input_multiple=16),
    "skipnet_m": BuiltinModel("mobilebench.zoo.skipnet", input_multiple=16),
    "skipnet_s": BuiltinModel("mobilebench.zoo.skipnet", input_multiple=16),
    "skipnet_xs": BuiltinModel("mobilebench.zoo.skipnet", input_multiple=16),
}

_REGISTRY: dict[str, ModelEntry] = {}
_builtins_loaded = False


def register_model(name: str | None = None, *, input_multiple: int = 1) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under ``name`` (default: the function name).

    The builder must take only keyword-only arguments, one of them ``num_classes``.
    ``input_multiple``: input sizes the architecture accepts are multiples of it.
    Registering a name twice is refused.
    """

    def decorator(builder: Builder) -> Builder:
        key = name or builder.__name__
        builtin = BUILTIN_MODELS.get(key)
        owner = None
        if key in _REGISTRY:
            existing = _REGISTRY[key].builder
            owner = f"{existing.__module__}.{existing.__qualname__}"
        elif builtin is not None and builder.__module__ != builtin.module:
            owner = builtin.module  # a built-in name is taken before its module is imported
        if owner is not None:
            raise MobilebenchError(f"model name {key!r} is already registered (by {owner}); pick another name")
        params = inspect.signature(builder).parameters
        if "num_classes" not in params or any(
            p.kind is not inspect.Parameter.KEYWORD_ONLY for p in params.values()
        ):
            raise MobilebenchError(
                f"model builder {builder.__qualname__} must take keyword-only arguments including num_classes"
            )
        doc = inspect.getdoc(builder) or ""
        _REGISTRY[key] = ModelEntry(key, builder, doc.splitlines()[0] if doc else "", input_multiple)
        return builder

    return decorator


def _load_builtin_models() -> None:
    """Import every module of the zoo package once, so their decorators have run."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    package_dir = Path(__file__).resolve().parent
    for info in pkgutil.iter_modules([str(package_dir)]):
        importlib.import_module(f"mobilebench.zoo.{info.name}")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"skipnet_*"``), sorted."""
    _load_builtin_models()
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registry name; a built-in one is answered without importing
    its module (and torch)."""
    return name in _REGISTRY or name in BUILTIN_MODELS or name in list_models()


def input_multiple_of(name: str) -> int:
    """The ``input_multiple`` of registry name ``name``, without importing a built-in
    model's module; unknown names raise like :func:`get_model_entry`."""
    if name in _REGISTRY:
        return _REGISTRY[name].input_multiple
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name].input_multiple
    return get_model_entry(name).input_multiple


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names raise with the closest matches.

    A built-in name imports only its own module; other names import every zoo module.
    """
    if name not in _REGISTRY and name in BUILTIN_MODELS:
        importlib.import_module(BUILTIN_MODELS[name].module)
    if name not in _REGISTRY:
        _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; {suggest(name, _REGISTRY, noun='models')}") from None


def create_model(
    name: str,
    *,
    num_classes: int = 1000,
    checkpoint: str | Path | None = None,
    **arch_options: Any,
) -> nn.Module:
    """Build the registered model ``name`` (train mode, freshly initialised).

    ``arch_options`` are passed to the builder (for instance ``width_mult=0.75`` for
    ``mobilenet_v3_small``); unknown options are refused with the accepted list.
    ``checkpoint``: a weights file loaded with :func:`mobilebench.zoo.load_checkpoint`.
    """
    entry = get_model_entry(name)
    accepted = entry.options
    unknown = sorted(set(arch_options) - set(accepted))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"
        raise UsageError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: {listed}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    try:
        model = entry.builder(num_classes=num_classes, **arch_options)
    except ValueError as exc:
        # Builders validate option values (a negative width, a string where a number belongs).
        raise UsageError(f"cannot build {name} with {arch_options}: {exc}") from exc
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model
