"""Top-1/top-5 accuracy: of a module on a loader, and of a named model on a dataset.

:func:`evaluate` is the loop (used by training every epoch and by ``mobilebench eval``);
under DDP each rank scores its shard and the counts are summed, so every image counts
exactly once. :func:`evaluate_named` resolves a model NAME as the other commands do
(card, registry name, checkpoint path), picks the plain or EMA weights, and
:func:`record_accuracy` stores the result in the results database and, on request,
the model card.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.train.distributed import DistContext
from mobilebench.train.progress import TrainProgress

if TYPE_CHECKING:
    from mobilebench.zoo.resolve import ResolvedModel


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
    """What ``mobilebench eval`` was asked. ``split`` None: the dataset's held-out split.

    ``dataset_name``: the name stored with the result (default: ``cifar100``, ``digits``,
    or the data folder's name for ``imagefolder``, e.g. ``imagenet``).
    """

    name: str
    kind: str = "imagefolder"
    data: Path | None = None
    split: str | None = None
    checkpoint: Path | None = None
    arch: str | None = None
    ema: bool = False
    input_size: int | None = None
    num_classes: int | None = None
    batch_size: int = 100
    workers: int = 4
    dataset_name: str | None = None


@dataclass(frozen=True)
class EvalResult:
    model: str
    arch: str
    checkpoint: str | None
    checkpoint_sha256: str | None
    weights: str  # "ema", "plain" or "random"
    dataset: str
    split: str
    input_size: int
    top1: float
    top5: float
    count: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _dataset_label(request: EvalRequest, split: str) -> str:
    from mobilebench.train.datasets import held_out_split

    if request.dataset_name:
        name = request.dataset_name
    elif request.kind == "imagefolder" and request.data is not None:
        name = Path(request.data).resolve().name
    else:
        name = request.kind
    # The standard held-out split is implied by the dataset name ("imagenet" = its val set).
    return name if split in (held_out_split(request.kind), "val") else f"{name}-{split}"


def _training_metadata(path: Path | None) -> dict[str, Any]:
    """arch/options/classes stored by ``mobilebench train`` in its checkpoints, else {}."""
    if path is None:
        return {}
    from mobilebench.train.checkpoint import FORMAT
    from mobilebench.zoo.checkpoint import read_checkpoint

    content = read_checkpoint(path)
    if isinstance(content, dict) and content.get("format") == FORMAT:
        return {k: content.get(k) for k in ("arch", "arch_options", "num_classes", "classes", "input_size")}
    return {}


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
    if num_outputs > 0 and len(dataset_classes) != num_outputs:  # 0: a program that does not say
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

    def __iter__(self):
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


def _build_for_eval(resolved: ResolvedModel, *, ema: bool) -> tuple[nn.Module, str]:
    """The network with the requested weights, and which they are (``ema``/``plain``).

    Zoo models and import paths are built bare and get their weights from the checkpoint
    (EMA or plain, as asked); an import path without a checkpoint keeps the weights its
    callable gives it; a ``.pt2`` program carries its own.
    """
    from mobilebench.zoo.checkpoint import (
        EMA_KEYS,
        extract_state_dict,
        load_state_dict_checked,
        read_checkpoint,
        strip_data_parallel_prefix,
    )
    from mobilebench.zoo.outside import build_from_import
    from mobilebench.zoo.registry import create_model
    from mobilebench.zoo.resolve import INIT_SEED

    if resolved.kind == "artifact":
        raise UsageError(f"{resolved.name} is a ready {resolved.artifact_runtime} artifact: eval needs a PyTorch model")
    if resolved.checkpoint is None:
        if resolved.kind == "zoo":
            raise UsageError(
                f"{resolved.name} has no checkpoint: evaluating random weights measures nothing; pass --checkpoint"
            )
        if ema:
            raise UsageError(f"--ema needs a checkpoint with EMA weights; {resolved.name} has none")
        if resolved.kind == "program":
            return _FixedMode(resolved.build()), "plain"
        return resolved.build(), "plain"  # an import path's own weights
    if resolved.kind == "import":
        model = build_from_import(resolved.arch, resolved.options, seed=INIT_SEED)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = create_model(resolved.arch, num_classes=resolved.num_classes, **resolved.options)
    source = f"checkpoint {resolved.checkpoint}"
    state_dict, wrapper = extract_state_dict(read_checkpoint(resolved.checkpoint), prefer_ema=ema, source=source)
    if ema and wrapper not in EMA_KEYS:
        raise UsageError(f"{source} holds no EMA weights (model_ema); drop --ema")
    state_dict, _ = strip_data_parallel_prefix(state_dict)
    load_state_dict_checked(model, state_dict, source=source)
    return model.eval(), "ema" if wrapper in EMA_KEYS else "plain"


def evaluate_named(request: EvalRequest, *, progress: TrainProgress | None = None) -> EvalResult:
    """Resolve, build and evaluate ``request.name`` on one split (single process)."""
    from mobilebench.train.data import EpochBatchSampler, make_loader, preprocess_for
    from mobilebench.train.datasets import held_out_split, open_dataset
    from mobilebench.train.distributed import single_process
    from mobilebench.zoo.resolve import resolve_model

    if request.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {request.batch_size}")
    split = request.split or held_out_split(request.kind)
    # A mobilebench training checkpoint says how the network was built; use that.
    meta = _training_metadata(request.checkpoint)
    resolved = resolve_model(
        request.name,
        checkpoint=request.checkpoint,
        arch=request.arch,
        input_size=request.input_size or meta.get("input_size"),
        num_classes=request.num_classes or meta.get("num_classes"),
    )
    if not meta and resolved.checkpoint is not None and resolved.checkpoint != request.checkpoint:
        meta = _training_metadata(resolved.checkpoint)
    if meta and resolved.kind == "zoo":
        if meta.get("arch") != resolved.arch:
            raise UsageError(f"checkpoint {resolved.checkpoint} was trained as {meta.get('arch')}, not {resolved.arch}")
        resolved = replace(resolved, options={**resolved.options, **dict(meta.get("arch_options") or {})})
    model, weights = _build_for_eval(resolved, ema=request.ema)

    batch_size, input_size = request.batch_size, resolved.input_size
    if resolved.kind == "program":
        # A program fixes its input shape, batch included.
        batch_size, _, height, width = resolved.input_shape
        if height != width:
            raise UsageError(f"{resolved.name} takes {height}x{width} inputs; eval uses square centre crops")
        input_size = height
    ctx = single_process()
    model.to(ctx.device).eval()
    dataset = open_dataset(request.kind, request.data, split)
    where = f"{request.data or request.kind} split {split!r}"
    mapping = _label_map(list(dataset.classes), meta.get("classes"), resolved.num_classes, where)
    preprocess = preprocess_for(request.kind, input_size, "none")
    sampler = EpochBatchSampler(len(dataset), batch_size, seed=0, shuffle=False)
    loader = make_loader(dataset, preprocess, sampler, workers=request.workers, pin_memory=ctx.device.type == "cuda")
    if resolved.kind == "program" and len(dataset) % batch_size:
        raise UsageError(f"{resolved.name} takes batches of exactly {batch_size}; {len(dataset)} images do not divide")
    started = time.perf_counter()
    with progress or TrainProgress() as progress:
        accuracy = evaluate(
            model,
            _RemappedTargets(loader, mapping) if mapping else loader,
            ctx,
            progress=progress,
            label=f"{resolved.name} on {split}",
        )
    return EvalResult(
        model=resolved.name,
        arch=resolved.arch,
        checkpoint=str(resolved.checkpoint or resolved.source or "") or None,
        checkpoint_sha256=resolved.checkpoint_sha256,
        weights=weights,
        dataset=_dataset_label(request, split),
        split=split,
        input_size=input_size,
        top1=accuracy.top1,
        top5=accuracy.top5,
        count=accuracy.count,
        seconds=time.perf_counter() - started,
    )


def accuracy_source(result: EvalResult) -> str:
    """The provenance text stored with a measured accuracy (DB row and model card)."""
    return f"measured by mobilebench eval on {result.dataset}"


def record_accuracy(result: EvalResult, *, db: Path | None, update_card: bool) -> None:
    """Store ``result`` in the accuracy table (and the model card when asked)."""
    from mobilebench.store import ResultsStore

    if update_card:
        from mobilebench.zoo.cards import get_card

        if get_card(result.model) is None:
            raise UsageError(f"--update-card: {result.model} has no model card to update")
    top1, top5 = round(result.top1, 3), round(result.top5, 3)
    with ResultsStore(db) as store:
        store.record_accuracy(
            model=result.model,
            checkpoint_sha256=result.checkpoint_sha256,
            dataset=result.dataset,
            top1=top1,
            top5=top5,
            source=accuracy_source(result),
        )
    if update_card:
        from mobilebench.zoo.cards import update_card_accuracy

        update_card_accuracy(result.model, dataset=result.dataset, top1=top1, top5=top5, source=accuracy_source(result))
