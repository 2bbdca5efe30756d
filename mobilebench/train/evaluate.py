"""Top-1/top-5 accuracy: of a module on a loader, and of a named model on a dataset.

:func:`evaluate` is the loop (used by training every epoch and by ``mobilebench eval``);
under DDP each rank scores its shard and the counts are summed, so every image counts
exactly once. :func:`evaluate_named` resolves a model NAME as the other commands do
(card, registry name, checkpoint file, ``.pt2``, ready artifact) and measures it in
eager PyTorch, or exports it (cached, as ``profile`` does) and runs the artifact in its
own runtime on every image: ExecuTorch's Python runtime (XNNPACK) or onnxruntime, one
image at a time, as the artifact was exported (batch 1). It returns an
:class:`EvalResult`; the command stores it.

Weights: those a checkpoint's exported artifact is made of, its EMA weights when it
has them (``mobilebench.zoo.load_checkpoint``'s rule); ``plain`` asks for the live
weights (eager only), ``ema`` insists on EMA ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import Artifact, ExportHooks, ExportOptions, export_model
from mobilebench.export.parity import SESSIONS
from mobilebench.export.ready import artifact_signature
from mobilebench.train.calibration import calibration_for
from mobilebench.train.data import EpochBatchSampler, make_loader, preprocess_for
from mobilebench.train.datasets import check_dataset_kind, held_out_split, open_dataset
from mobilebench.train.distributed import DistContext, single_process
from mobilebench.train.progress import TrainProgress
from mobilebench.zoo.checkpoint import EMA_KEYS, extract_state_dict, load_state_dict_checked, read_checkpoint
from mobilebench.zoo.checkpoint import strip_data_parallel_prefix
from mobilebench.zoo.resolve import (
    ArtifactFile,
    ImportedModel,
    ProgramFile,
    ResolvedModel,
    ZooModelRef,
    resolve_model,
)

RUNTIMES = ("eager", "executorch", "onnx")
WEIGHTS = ("auto", "ema", "plain")


@dataclass(frozen=True)
class Accuracy:
    """Percentages (76.2, not 0.762) over ``count`` images."""

    top1: float
    top5: float
    count: int


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many targets are among the top-k logits, per k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top.eq(targets.view(-1, 1))
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    ctx: DistContext,
    *,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    progress: TrainProgress | None = None,
    label: str = "eval",
) -> Accuracy:
    """Accuracy of ``model`` (switched to eval mode, and back) over every batch of ``loader``."""
    was_training = model.training
    model.eval()
    correct1 = correct5 = seen = 0
    autocast = (
        torch.autocast(device_type=ctx.device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else nullcontext()
    )
    task = progress.start(label, total=len(loader)) if progress else None
    try:
        for images, targets in loader:
            images = images.to(ctx.device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = targets.to(ctx.device, non_blocking=True)
            with autocast:
                logits = model(images)
            c1, c5 = topk_correct(logits.float(), targets)
            correct1, correct5, seen = correct1 + c1, correct5 + c5, seen + len(targets)
            if progress:
                progress.advance(task)
    finally:
        if progress:
            progress.finish(task)
        model.train(was_training)
    correct1, correct5, seen = ctx.all_reduce_sum([correct1, correct5, seen])
    if seen == 0:
        raise MobilebenchError("evaluation saw no images")
    return Accuracy(top1=100.0 * correct1 / seen, top5=100.0 * correct5 / seen, count=int(seen))


@dataclass(frozen=True)
class EvalRequest:
    """What ``mobilebench eval`` was asked.

    ``dataset``: the dataset kind (default: a training checkpoint's, else
    ``imagefolder``); ``data``: its location (default: a training checkpoint's, for the
    same kind); ``split`` None: the held-out split. ``runtime``: ``eager``, ``executorch``
    or ``onnx`` (None: eager, or a ready artifact's own runtime); ``dtype`` and
    ``calibration`` (see :mod:`mobilebench.train.calibration`) choose the artifact.
    ``weights``: ``auto``, ``ema`` or ``plain`` (see the module docstring).
    ``dataset_name``: the name stored with the result (default: ``cifar100``,
    ``digits``, or the data folder's name for ``imagefolder``, e.g. ``imagenet``).
    ``keep_outputs``: for an artifact, keep that many of the split's inputs, spread
    evenly over it, with the artifact's outputs for them (:class:`HostOutputs`).
    """

    name: str
    dataset: str | None = None
    data: Path | None = None
    split: str | None = None
    checkpoint: Path | None = None
    arch: str | None = None
    weights: str = "auto"
    input_size: int | None = None
    num_classes: int | None = None
    runtime: str | None = None
    dtype: str = "fp32"
    calibration: str | None = None
    batch_size: int = 100
    workers: int = 4
    dataset_name: str | None = None
    cache_dir: Path | None = None
    keep_outputs: int = 0


@dataclass(frozen=True)
class HostOutputs:
    """Some of the split's inputs as the artifact received them (float32, its input
    shape) and its output 0 for each on this computer: the reference an on-device check
    (:mod:`mobilebench.bench.agreement`) compares the device's outputs with."""

    artifact: Artifact
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class EvalResult:
    """Top-1/top-5 (percent) of one model on ``count`` images of ``dataset``.

    ``runtime``/``dtype``: what computed the predictions; ``artifact_sha256``/``artifact``
    the exported file it ran (None for eager). ``warnings`` for the command to print.
    ``host_outputs``: what :attr:`EvalRequest.keep_outputs` asked to keep (not part of
    :meth:`as_dict`).
    """

    model: str
    arch: str
    checkpoint: str | None
    checkpoint_sha256: str | None
    weights: str  # "ema", "plain", or "own" (a program's or artifact's)
    dataset: str
    split: str
    input_size: int
    top1: float
    top5: float
    count: int
    seconds: float
    runtime: str = "eager"
    dtype: str = "fp32"
    artifact_sha256: str | None = None
    artifact: str | None = None
    warnings: tuple[str, ...] = ()
    host_outputs: HostOutputs | None = field(default=None, repr=False, compare=False)

    @property
    def source(self) -> str:
        """The provenance text stored with the measurement (DB row and model card)."""
        if self.runtime == "eager":
            return f"measured by mobilebench eval on {self.dataset}"
        kind = ".pte" if self.runtime == "executorch" else ".onnx"
        return f"measured on the {kind} ({self.dtype}, {self.runtime}) by mobilebench eval on {self.dataset}"

    def as_dict(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "host_outputs"}
        row["warnings"] = list(self.warnings)
        return row


def _dataset_label(name: str | None, kind: str, data: Path | None, split: str) -> str:
    if name:
        label = name
    elif kind == "imagefolder" and data is not None:
        label = Path(data).resolve().name
    else:
        label = kind
    # The standard held-out split is implied by the dataset name ("imagenet" = its val set).
    return label if split in (held_out_split(kind), "val") else f"{label}-{split}"


def _label_map(
    dataset_classes: list[str], model_classes: list[str] | None, num_outputs: int, where: str
) -> list[int] | None:
    """Dataset label -> model output index, or None when they are the same."""
    if model_classes:
        index = {name: i for i, name in enumerate(model_classes)}
        unknown = [c for c in dataset_classes if c not in index]
        if unknown:
            raise UsageError(f"{where} has classes the model was not trained on: {', '.join(unknown[:5])}")
        mapping = [index[c] for c in dataset_classes]
        return None if mapping == list(range(len(dataset_classes))) else mapping
    if num_outputs > 0 and len(dataset_classes) != num_outputs:  # 0: a file that does not say
        raise UsageError(
            f"{where} has {len(dataset_classes)} classes but the model has {num_outputs} outputs; "
            "evaluate on the full class set (class folders sorted by name = output index)"
        )
    return None


class _RemappedTargets:
    def __init__(self, loader: DataLoader, mapping: list[int]) -> None:
        self.loader, self.mapping = loader, torch.tensor(mapping)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, targets in self.loader:
            yield images, self.mapping[targets]


class _FixedMode(nn.Module):
    """Holds a ``torch.export`` program's module, whose train/eval mode is fixed at export
    (it refuses ``.eval()``): mode switches stop here."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True) -> _FixedMode:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class _ArtifactModule(_FixedMode):
    """An artifact in its runtime, as a module the evaluation loop can call: a batch is
    run one image at a time (the artifact's static batch of 1). The images whose index
    in the split is in ``keep`` are kept in ``kept`` with their outputs."""

    def __init__(self, session: Callable[[torch.Tensor], np.ndarray]) -> None:
        super().__init__(nn.Identity())
        self.session = session
        self.keep: frozenset[int] = frozenset()
        self.kept: list[tuple[np.ndarray, np.ndarray]] = []
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for image in x.split(1):
            output = self.session(image.contiguous())
            if self.seen in self.keep:
                self.kept.append((image.cpu().numpy().astype(np.float32), np.array(output, dtype=np.float32)))
            self.seen += 1
            outputs.append(output)
        return torch.from_numpy(np.concatenate(outputs))


def _weights_of(resolved: ResolvedModel, weights: str) -> tuple[nn.Module, str]:
    """The eager network with the requested weights, and which they are."""
    if weights not in WEIGHTS:
        raise UsageError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    if isinstance(resolved, ProgramFile):
        if weights != "auto":
            raise UsageError(f"{resolved.name} is a .pt2 program: it has its own weights; drop --{weights}")
        return _FixedMode(resolved.build()), "own"
    if resolved.checkpoint is None:
        if isinstance(resolved, ZooModelRef):
            raise UsageError(
                f"{resolved.name} has no checkpoint: evaluating random weights measures nothing; pass --checkpoint"
            )
        if weights == "ema":
            raise UsageError(f"--ema needs a checkpoint with EMA weights; {resolved.name} has none")
        return resolved.build(), "own"  # an import path's own weights
    assert isinstance(resolved, (ZooModelRef, ImportedModel))
    model = resolved.bare()
    source = f"checkpoint {resolved.checkpoint}"
    content = read_checkpoint(resolved.checkpoint)
    state_dict, wrapper = extract_state_dict(content, prefer_ema=weights != "plain", source=source)
    if weights == "ema" and wrapper not in EMA_KEYS:
        raise UsageError(f"{source} holds no EMA weights (model_ema); drop --ema")
    state_dict, _ = strip_data_parallel_prefix(state_dict)
    load_state_dict_checked(model, state_dict, source=source)
    return model.eval(), "ema" if wrapper in EMA_KEYS else "plain"


def _artifact_of(
    resolved: ResolvedModel, request: EvalRequest, runtime: str, hooks: ExportHooks | None
) -> tuple[Artifact, str]:
    """The (cached) artifact ``profile`` would time, and whose weights it holds."""
    if request.weights == "plain" and resolved.checkpoint is not None:
        raise UsageError(
            "--plain applies to --runtime eager: artifacts are exported from the weights every command uses "
            "(EMA when the checkpoint has them)"
        )
    calibration = calibration_for(resolved, request.calibration) if request.dtype == "int8" else None
    options = ExportOptions(runtime=runtime, dtype=request.dtype, calibration=calibration)  # type: ignore[arg-type]
    artifact = export_model(resolved, options, cache_dir=request.cache_dir, hooks=hooks)
    if isinstance(resolved, (ProgramFile, ArtifactFile)) or resolved.checkpoint is None:
        weights = "own"
    else:
        training = resolved.training
        has_ema = training.has_ema if training is not None else _has_ema(resolved.checkpoint)
        weights = "ema" if has_ema else "plain"
    if request.weights == "ema" and weights != "ema":
        raise UsageError(f"{resolved.name} holds no EMA weights; drop --ema")
    return artifact, weights


def _has_ema(path: Path) -> bool:
    _, wrapper = extract_state_dict(read_checkpoint(path), source=f"checkpoint {path}")
    return wrapper in EMA_KEYS


def evaluate_named(
    request: EvalRequest,
    *,
    progress: TrainProgress | None = None,
    export_hooks: ExportHooks | None = None,
) -> EvalResult:
    """Resolve ``request.name`` and measure it on one split (single process); see the
    module docstring. Nothing is stored: the caller records the result."""
    if request.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {request.batch_size}")
    resolved = resolve_model(
        request.name,
        checkpoint=request.checkpoint,
        arch=request.arch,
        input_size=request.input_size,
        num_classes=request.num_classes,
    )
    training = resolved.training
    runtime = request.runtime or (resolved.runtime if isinstance(resolved, ArtifactFile) else "eager")
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime != "executorch" and request.dtype != "fp32":
        raise UsageError(f"--dtype {request.dtype} is measured on an ExecuTorch artifact: add --runtime executorch")
    if request.keep_outputs and runtime == "eager":
        raise UsageError("keeping outputs for an on-device check needs an exported artifact: add --runtime executorch")
    kind = check_dataset_kind(request.dataset or (training.dataset_kind if training else None) or "imagefolder")
    data = request.data
    if data is None and training is not None and training.dataset_kind == kind:
        data = training.dataset_root
    split = request.split or held_out_split(kind)

    batch_size, input_size, artifact = request.batch_size, resolved.input_size, None
    if runtime == "eager":
        if isinstance(resolved, ArtifactFile):
            raise UsageError(f"{resolved.name} is a ready {resolved.runtime} artifact: use --runtime {resolved.runtime}")
        model, weights = _weights_of(resolved, request.weights)
        if isinstance(resolved, ProgramFile):
            batch_size = resolved.input_shape[0]  # a program fixes its batch, too
    else:
        artifact, weights = _artifact_of(resolved, request, runtime, export_hooks)
        model = _ArtifactModule(SESSIONS[runtime](artifact.path))
        batch_size = 1 if isinstance(resolved, ArtifactFile) else request.batch_size
    if isinstance(resolved, (ProgramFile, ArtifactFile)):
        shape = artifact.input_shape if artifact is not None else resolved.input_shape
        if shape[-1] != shape[-2]:
            raise UsageError(f"{resolved.name} takes {shape[-2]}x{shape[-1]} inputs; eval uses square centre crops")
        input_size = shape[-1]
    num_outputs = resolved.num_classes
    if isinstance(resolved, ArtifactFile):
        num_outputs = artifact_signature(resolved.source).num_classes

    ctx = single_process()
    model.to(ctx.device).eval()
    dataset = open_dataset(kind, data, split)
    where = f"{data or kind} split {split!r}"
    mapping = _label_map(list(dataset.classes), list(training.classes) if training else None, num_outputs, where)
    if isinstance(resolved, ProgramFile) and len(dataset) % batch_size:
        raise UsageError(f"{resolved.name} takes batches of exactly {batch_size}; {len(dataset)} images do not divide")
    if isinstance(model, _ArtifactModule) and request.keep_outputs:
        spread = np.linspace(0, len(dataset) - 1, min(request.keep_outputs, len(dataset)))
        model.keep = frozenset(spread.round().astype(int).tolist())
    preprocess = preprocess_for(kind, input_size, "none")
    sampler = EpochBatchSampler(len(dataset), batch_size, seed=0, shuffle=False)
    loader = make_loader(dataset, preprocess, sampler, workers=request.workers, pin_memory=ctx.device.type == "cuda")
    started = time.perf_counter()
    accuracy = evaluate(
        model,
        _RemappedTargets(loader, mapping) if mapping else loader,
        ctx,
        progress=progress,
        label=f"{resolved.name} on {split}" + (f" ({runtime} {request.dtype})" if runtime != "eager" else ""),
    )
    checkpoint = resolved.checkpoint or getattr(resolved, "source", None)
    kept = model.kept if isinstance(model, _ArtifactModule) else []
    host_outputs = None
    if kept and artifact is not None:
        host_outputs = HostOutputs(artifact, tuple(x for x, _ in kept), tuple(y for _, y in kept))
    return EvalResult(
        model=resolved.name,
        arch=resolved.arch,
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_sha256=resolved.checkpoint_sha256,
        weights=weights,
        dataset=_dataset_label(request.dataset_name, kind, data, split),
        split=split,
        input_size=input_size,
        top1=accuracy.top1,
        top5=accuracy.top5,
        count=accuracy.count,
        seconds=time.perf_counter() - started,
        runtime=runtime,
        dtype=request.dtype if runtime != "eager" else "fp32",
        artifact_sha256=artifact.sha256 if artifact else None,
        artifact=str(artifact.path) if artifact else None,
        warnings=resolved.warnings,
        host_outputs=host_outputs,
    )
