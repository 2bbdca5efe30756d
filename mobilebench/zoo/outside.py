"""Models from outside the zoo: import paths, ``torch.export`` programs, ready artifacts.

Three forms a model NAME (or a card's ``arch``) can take besides a registry name; each
is pinned down by :func:`mobilebench.zoo.resolve.resolve_model` with the helpers here:

- an **import path** ``package.module:callable`` (the callable may be a dotted
  attribute, ``pkg.mod:Net.small``). The callable is called with the card's
  ``[options]`` as keyword arguments (nothing else: put ``num_classes`` there if it
  takes one) under ``torch.manual_seed(0)`` and must return a ``torch.nn.Module``.
  The current directory is searched last, so ``./mypkg`` is found as it is by
  ``python -m``. Its identity (for the artifact cache and the results) is
  :func:`module_fingerprint`: there are no checkpoint bytes to hash.
- a **program** ``*.pt2`` written by ``torch.export.save``: it fixes its own input
  shape, which must be one static ``N x C x H x W`` image tensor with N = 1. It is
  loaded with ``torch.export.load``, which unpickles parts of the file: load programs
  only from sources you trust, as you would import their code.
- a **ready artifact** ``*.pte`` (ExecuTorch) or ``*.onnx``: profiled as it is, with no
  export step. Its input shape is read from the file by the exporter
  (:mod:`mobilebench.export.ready`), which has the runtimes to read it with.

Every problem is a :class:`~mobilebench.errors.UsageError` naming the path (exit 2).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.errors import UsageError
from mobilebench.text import suggest
from mobilebench.toolchain import quiet_toolchain

if TYPE_CHECKING:
    import torch
    from torch import nn

_IDENTIFIER = r"[A-Za-z_]\w*"
_IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")

PROGRAM_SUFFIX = ".pt2"
#: Suffix of a ready artifact -> the runtime that runs it.
ARTIFACT_RUNTIMES: dict[str, str] = {".pte": "executorch", ".onnx": "onnx"}


def is_import_path(text: str) -> bool:
    """``package.module:callable`` (dotted names on both sides of one colon)."""
    return bool(_IMPORT_PATH.match(text))


def shape_text(shape: Sequence[object]) -> str:
    """``1x3x224x224``; symbolic dimensions keep their names (``s77x3x224x224``)."""
    return "x".join(str(d) for d in shape)


# ---------------------------------------------------------------------- import paths


def _ensure_cwd_importable() -> None:
    # A console script's sys.path does not hold the current directory (``python -m``
    # does). Appended, not prepended: a local folder never shadows an installed package.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def load_callable(path: str) -> Callable[..., Any]:
    """The object ``package.module:attr.attr`` names, which must be callable."""
    if not is_import_path(path):
        raise UsageError(f"{path!r} is not an import path; write it as package.module:callable")
    module_name, _, attributes = path.partition(":")
    _ensure_cwd_importable()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise UsageError(
                f"import path {path}: no module named {missing!r} (is it installed, or in the current directory?)"
            ) from None
        raise UsageError(f"import path {path}: importing {module_name} failed: {exc}") from None
    except Exception as exc:  # the user's module may raise anything while importing
        raise UsageError(f"import path {path}: importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    target: Any = module
    found: list[str] = []
    for attribute in attributes.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            names = [n for n in dir(target) if not n.startswith("_")]
            where = f"{module_name}:{'.'.join(found)}" if found else f"module {module_name}"
            raise UsageError(
                f"import path {path}: {where} has no attribute {attribute!r}; {suggest(attribute, names, noun='names')}"
            ) from None
        found.append(attribute)
    if not callable(target):
        raise UsageError(f"import path {path} names a {type(target).__name__}, not a function or class")
    return target


def build_from_import(path: str, options: dict[str, Any], *, seed: int) -> nn.Module:
    """Call the import path's callable with ``options`` under ``seed``; eval mode.

    The global RNG state is left as it was, so random initialisation is reproducible.
    """
    import torch
    from torch import nn

    factory = load_callable(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            built = factory(**options)
        except Exception as exc:  # user code: bad options, or a bug in it
            given = ", ".join(f"{k}={v!r}" for k, v in options.items())
            raise UsageError(f"calling {path}({given}) failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(built, nn.Module):
        raise UsageError(
            f"import path {path} returned a {type(built).__module__}.{type(built).__qualname__}, "
            "not a torch.nn.Module; it must build and return the network"
        )
    return built.eval()


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over the module's state_dict: every name, dtype, shape and byte, in order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        # Raw bytes whatever the dtype (numpy has no bfloat16): view as uint8 first.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _source_sha256(path: str) -> str:
    """SHA-256 of the Python sources of the callable's top-level package (or module)."""
    top = importlib.import_module(path.partition(":")[0].split(".")[0])
    if hasattr(top, "__path__"):  # a package: every .py file under it
        files = sorted(p for folder in top.__path__ for p in Path(folder).rglob("*.py"))
    else:
        files = [Path(top.__file__)] if getattr(top, "__file__", None) else []
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def module_fingerprint(path: str, module: nn.Module) -> dict[str, str]:
    """What identifies a model built by an import path, for cache keys and results.

    - ``state_dict_sha256``: the weights (there is no checkpoint file to hash);
    - ``structure_sha256``: the module's ``repr`` (layers and their hyper-parameters);
    - ``source_sha256``: the ``.py`` sources of the callable's top-level package, so an
      edited ``forward`` that changes neither weights nor layers is not mistaken for
      the old model.
    """
    return {
        "import_path": path,
        "state_dict_sha256": state_dict_sha256(module),
        "structure_sha256": hashlib.sha256(repr(module).encode()).hexdigest(),
        "source_sha256": _source_sha256(path),
    }


# ---------------------------------------------------------------------- input shapes


@dataclass(frozen=True)
class FileSignature:
    """What a program or artifact file says about its input and output."""

    input_shape: tuple[int, ...]
    num_classes: int  # last dimension of the first output; 0 when the file does not say


def check_requested_size(path: Path, shape: tuple[int, ...], input_size: int | None) -> None:
    if input_size is None:
        return
    requested = (*shape[:-2], input_size, input_size) if len(shape) == 4 else (1, 3, input_size, input_size)
    if tuple(shape) != requested:
        raise UsageError(
            f"{path.name} takes input {shape_text(shape)}, but {shape_text(requested)} was asked for "
            f"(--input-size {input_size}); its input shape is fixed: drop --input-size or export it again at that size"
        )


def check_image_input(path: Path, shape: Sequence[object], input_size: int | None) -> tuple[int, ...]:
    """``shape`` as ints when it is one static ``1 x C x H x W`` image tensor that fits
    ``input_size`` (when given); otherwise a UsageError naming the shapes."""
    if len(shape) != 4:
        raise UsageError(
            f"{path.name} takes input {shape_text(shape)}, not a 4-d image tensor (1xCxHxW); "
            "mobilebench feeds one NCHW image"
        )
    if not all(isinstance(d, int) for d in shape):
        raise UsageError(
            f"{path.name} has a dynamic input shape {shape_text(shape)}; profiling needs a static one: "
            "export it with torch.export.export(model, (torch.randn(1, 3, H, W),)) and no dynamic_shapes"
        )
    if shape[0] != 1:
        raise UsageError(f"{path.name} takes input {shape_text(shape)}: a batch of {shape[0]}; export it at batch 1")
    static = tuple(int(d) for d in shape)  # type: ignore[call-overload]
    check_requested_size(path, static, input_size)
    return static


def last_dim(shape: Sequence[object]) -> int:
    """The class count a model's output shape states (its last dimension), 0 if unknown."""
    return shape[-1] if shape and isinstance(shape[-1], int) else 0


def load_program(path: Path) -> torch.export.ExportedProgram:
    """``torch.export.load`` with a one-line error for files that are not programs."""
    import torch

    try:
        with quiet_toolchain():
            return torch.export.load(path)
    except Exception as exc:  # zip, pickle and schema errors of assorted types
        reason = " ".join(str(exc).split())[:200]
        raise UsageError(
            f"{path} is not a program written by torch.export.save ({type(exc).__name__}: {reason})"
        ) from None


def program_signature(path: Path, program: torch.export.ExportedProgram, input_size: int | None) -> FileSignature:
    """The one image input of an exported program, checked (see :func:`check_image_input`)."""
    user_inputs = set(program.graph_signature.user_inputs)
    inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in user_inputs]
    if len(inputs) != 1:
        raise UsageError(f"{path.name} takes {len(inputs)} inputs; mobilebench feeds exactly one image tensor")
    value = inputs[0].meta.get("val")
    if value is None or not hasattr(value, "shape"):
        raise UsageError(f"{path.name}: its input is not a tensor; mobilebench feeds one image tensor")
    shape = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
    outputs = next(n for n in program.graph.nodes if n.op == "output").args[0]
    first = outputs[0] if isinstance(outputs, (list, tuple)) and outputs else outputs
    out_value = getattr(first, "meta", {}).get("val")
    out_shape = tuple(out_value.shape) if out_value is not None and hasattr(out_value, "shape") else ()
    return FileSignature(check_image_input(path, shape, input_size), last_dim(out_shape))
