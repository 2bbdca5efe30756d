"""The training loop: one process or DDP under torchrun, resumable exactly.

:func:`train` runs a :class:`TrainConfig`. What it guarantees:

- **Exact resume.** Everything that decides the next step is in ``last.pt``: weights,
  EMA, optimizer, scaler, Bias Loss running minimum, the position (epoch, batch), and
  every rank's RNG states. Data order and augmentation are functions of (seed, epoch,
  position) (:mod:`mobilebench.train.data`), the learning rate of the position
  (:class:`~mobilebench.train.optim.LrSchedule`). With ``deterministic=True`` a run
  killed at any point and resumed ends with bit-identical weights to one never
  interrupted (same number of processes).
- **Atomic outputs.** ``last.pt`` after every epoch (and every
  ``checkpoint_every_steps`` steps), ``best.pt`` when the held-out top-1 of the plain or
  EMA weights improves, both written to a temporary file and renamed. ``log.jsonl``: one
  JSON object per line, ``"event": "step"`` every ``log_every_steps`` steps and
  ``"event": "epoch"`` with the evaluation; on resume, records after the checkpoint are
  dropped so the log reads as one run.
- **DDP.** Rank r of N takes every N-th sample (per-process batch = batch_size / N),
  gradients are all-reduced, the Bias Loss normalised over the global batch. BatchNorm
  statistics (live and EMA) are averaged over ranks at every checkpoint, so all ranks
  hold identical weights there; evaluation is sharded and summed. Only rank 0 writes
  files or shows progress.
- **CUDA.** AMP (float16 with a gradient scaler, or bfloat16), channels-last, pinned
  memory, cuDNN autotuning unless deterministic.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mobilebench import __version__
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import write_text_atomic
from mobilebench.train.bias_loss import BiasLoss
from mobilebench.train.checkpoint import (
    FORMAT,
    capture_rng_state,
    git_revision,
    load_training_checkpoint,
    restore_rng_state,
    save_atomic,
    seed_everything,
    weights_only,
)
from mobilebench.train.data import DataConfig, EpochBatchSampler, make_loader, open_splits, preprocess_for
from mobilebench.train.distributed import DistContext, init_distributed
from mobilebench.train.ema import ModelEma
from mobilebench.train.evaluate import Accuracy, evaluate
from mobilebench.train.features import ModelWithFeatures
from mobilebench.train.optim import LrSchedule, build_optimizer
from mobilebench.train.progress import TrainProgress
from mobilebench.train.recipes import Recipe

LAST = "last.pt"
BEST = "best.pt"
LOG = "log.jsonl"
# How often the host reads the loss back for the progress bar and the finiteness check
# (each read waits for the GPU).
SYNC_EVERY_STEPS = 10
# Recipe keys a resumed run may change: extending a finished run is common and harmless.
RESUMABLE_CHANGES = frozenset({"epochs"})
EVAL_BATCH_SIZE = 100  # per process; evaluation keeps no activations, so larger is fine


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``arch`` names a zoo model (ignored when a model is passed in).

    ``feature_module``: the module whose output is the feature map Bias Loss reads, for
    models without ``forward_features``. ``checkpoint_every_steps``: also write
    ``last.pt`` mid-epoch (0: only at epoch ends).
    """

    arch: str
    recipe: Recipe
    data: DataConfig
    out_dir: Path
    arch_options: Mapping[str, Any] = field(default_factory=dict)
    feature_module: str | None = None
    seed: int = 0
    deterministic: bool = False
    resume: bool = False
    checkpoint_every_steps: int = 0
    log_every_steps: int = 50


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    completed_epochs: int
    metrics: dict[str, Any]  # the last evaluation
    best_top1: float


class _Meters:
    """Running sums of one epoch on one rank (they travel in checkpoints mid-epoch).

    Kept as tensors on the training device and read back only when needed, so that a
    GPU step does not wait for the previous one to finish.
    """

    def __init__(self, device: torch.device, state: Mapping[str, float] | None = None) -> None:
        state = state or {}
        self.sums = torch.tensor(
            [float(state.get("loss_sum", 0.0)), float(state.get("correct", 0.0))], dtype=torch.float64, device=device
        )
        self.seen = int(state.get("seen", 0))

    def update(self, loss: torch.Tensor, correct: torch.Tensor, count: int) -> None:
        self.sums[0] += loss.detach().double() * count
        self.sums[1] += correct
        self.seen += count

    def state_dict(self) -> dict[str, float]:
        loss_sum, correct = self.sums.tolist()
        return {"loss_sum": loss_sum, "correct": correct, "seen": self.seen}


class _JsonlLog:
    """Append-only JSONL on rank 0; no-op elsewhere."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records written after global step ``step`` (work the checkpoint does not hold)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))


def _configure_determinism(deterministic: bool) -> None:
    if deterministic:
        # cuBLAS needs this before its first use to pick deterministic kernels.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: a few CUDA kernels (e.g. adaptive pooling's backward) have no
    # deterministic version; they warn instead of stopping the run. Set both ways, so
    # that one run in a process does not leak its mode into the next.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = torch.cuda.is_available() and not deterministic


def _set_bn_momentum(model: nn.Module, momentum: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = momentum


def _check_resume_compatible(config: TrainConfig, stored: dict[str, Any], recipe: Recipe, num_classes: int) -> None:
    stored_recipe = Recipe.from_dict(stored["recipe"], source=f"{LAST} recipe")
    changed = [
        k for k, v in recipe.to_dict().items() if k not in RESUMABLE_CHANGES and stored_recipe.to_dict().get(k) != v
    ]
    if changed:
        detail = ", ".join(f"{k}: {stored_recipe.to_dict()[k]!r} -> {recipe.to_dict()[k]!r}" for k in changed[:4])
        raise UsageError(
            f"--resume: the recipe differs from the checkpoint's ({detail}); a resumed run keeps its recipe, "
            "so repeat the original options (only --epochs may change)"
        )
    checks = {
        "arch": (stored.get("arch"), config.arch),
        "arch options": (dict(stored.get("arch_options") or {}), dict(config.arch_options)),
        "seed": (stored["run"].get("seed"), config.seed),
        "feature module": (stored["run"].get("feature_module"), config.feature_module),
        # Under DDP, BatchNorm statistics are averaged at every checkpoint: part of the run.
        "checkpoint interval": (stored["run"].get("checkpoint_every_steps", 0), config.checkpoint_every_steps),
        "dataset kind": (stored["dataset"].get("kind"), config.data.kind),
        "number of classes": (stored.get("num_classes"), num_classes),
    }
    for what, (before, now) in checks.items():
        if before != now:
            raise UsageError(f"--resume: the checkpoint's {what} is {before!r}, this run's {now!r}; they must match")


def train(config: TrainConfig, *, model: nn.Module | None = None, progress: TrainProgress | None = None) -> TrainResult:
    """Train as configured (see the module docstring); returns the final metrics.

    ``model``: train this module instead of building ``config.arch`` from the zoo (it
    needs ``forward_features``/``forward_head`` or ``config.feature_module``).
    ``progress``: what draws epochs and evaluations (rank 0 only; default: nothing).
    """
    ctx = init_distributed()
    try:
        return _Trainer(config, ctx, model, progress if ctx.is_main and progress is not None else TrainProgress()).run()
    finally:
        ctx.close()


class _Trainer:
    def __init__(self, config: TrainConfig, ctx: DistContext, model: nn.Module | None, progress: TrainProgress) -> None:
        self.config, self.ctx, self.progress = config, ctx, progress
        recipe = config.recipe
        _configure_determinism(config.deterministic)
        self.out_dir = Path(config.out_dir)
        last = self.out_dir / LAST
        self.stored: dict[str, Any] | None = None
        if config.resume:
            if not last.is_file():
                raise UsageError(f"--resume: no {LAST} in {self.out_dir} to continue from")
            self.stored = load_training_checkpoint(last)
        elif last.exists():
            raise UsageError(
                f"{self.out_dir} already holds a training run ({LAST}); pass --resume or choose another --out"
            )

        if recipe.batch_size % ctx.world_size:
            raise UsageError(f"batch size {recipe.batch_size} does not split evenly over {ctx.world_size} processes")
        self.per_process_batch = recipe.batch_size // ctx.world_size

        self.train_set, self.val_set = open_splits(config.data)
        self.classes = list(self.train_set.classes)
        if self.stored is not None:
            _check_resume_compatible(config, self.stored, recipe, len(self.classes))

        cuda = ctx.device.type == "cuda"
        self.channels_last = cuda and recipe.channels_last
        self.amp_dtype = getattr(torch, recipe.amp_dtype) if (cuda and recipe.amp) else None

        # Same initial weights on every rank (DDP would broadcast rank 0's anyway).
        seed_everything(config.seed)
        if model is None:
            from mobilebench.zoo.registry import create_model
            from mobilebench.zoo.resolve import check_input_size

            check_input_size(config.arch, recipe.input_size)  # e.g. SkipNet needs multiples of 16
            model = create_model(config.arch, num_classes=len(self.classes), **dict(config.arch_options))
        _set_bn_momentum(model, recipe.bn_momentum)
        model.to(ctx.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        # The EMA copies the bare model, before any hook or DDP wrapper is attached.
        self.ema = ModelEma(model, recipe.ema_decay) if recipe.ema_decay > 0 else None
        wrapped = ModelWithFeatures(model, config.feature_module)
        self.net: nn.Module = (
            DistributedDataParallel(wrapped, device_ids=[ctx.local_rank] if cuda else None)
            if ctx.distributed
            else wrapped
        )
        # None: plain cross-entropy.
        self.criterion: BiasLoss | None = None
        if recipe.loss == "bias":
            self.criterion = BiasLoss(
                recipe.bias_alpha, recipe.bias_beta, recipe.bias_normalization, sync_distributed=ctx.distributed
            ).to(ctx.device)
        self.optimizer = build_optimizer(model, recipe)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        self.train_sampler = EpochBatchSampler(
            len(self.train_set),
            self.per_process_batch,
            seed=config.seed,
            shuffle=True,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        self.val_sampler = EpochBatchSampler(
            len(self.val_set),
            EVAL_BATCH_SIZE,
            seed=config.seed,
            shuffle=False,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        self.steps_per_epoch = len(self.train_sampler)
        self.schedule = LrSchedule(recipe, self.steps_per_epoch)
        preprocess = preprocess_for(config.data.kind, recipe.input_size, recipe.augment)
        self.train_loader = make_loader(
            self.train_set, preprocess, self.train_sampler, workers=config.data.workers, pin_memory=cuda
        )
        self.val_loader = make_loader(
            self.val_set, preprocess.for_eval(), self.val_sampler, workers=config.data.workers, pin_memory=cuda
        )

        self.epoch, self.batch, self.global_step = 0, 0, 0
        self.best_top1 = -math.inf
        self.metrics: dict[str, Any] = {}
        self.meters = _Meters(ctx.device)
        self.log = _JsonlLog(self.out_dir / LOG, enabled=ctx.is_main)
        self.git_revision = git_revision() if ctx.is_main else None
        if self.stored is not None:
            self._restore(self.stored)
        else:
            # Per-rank streams from here on (dropout masks differ between ranks).
            seed_everything(config.seed + ctx.rank)
            if ctx.is_main:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                self.log.path.unlink(missing_ok=True)

    # -- checkpoints -------------------------------------------------------------------

    def _restore(self, stored: dict[str, Any]) -> None:
        from mobilebench.zoo.checkpoint import load_state_dict_checked

        source = f"checkpoint {self.out_dir / LAST}"
        load_state_dict_checked(self.model, stored["model"], source=source)
        if self.ema is not None:
            if "model_ema" not in stored:
                raise MobilebenchError(f"{source} has no EMA weights although the recipe keeps an EMA")
            self.ema.load_state_dict(stored["model_ema"])
        self.optimizer.load_state_dict(stored["optimizer"])
        if stored["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(stored["scaler"])
        if self.criterion is not None and stored.get("loss"):
            self.criterion.load_state_dict(stored["loss"])
        self.epoch, self.batch = int(stored["epoch"]), int(stored["batch"])
        self.global_step = int(stored["global_step"])
        self.best_top1 = float(stored["best_top1"])
        self.metrics = dict(stored.get("metrics") or {})
        rank_states = stored["rank_states"]
        if len(rank_states) == self.ctx.world_size:
            mine = rank_states[self.ctx.rank]
            restore_rng_state(mine["rng"])
            self.meters = _Meters(self.ctx.device, mine["meters"])
        else:
            if self.batch:
                raise UsageError(
                    f"--resume: the checkpoint was written mid-epoch by {len(rank_states)} process(es); "
                    f"resume it with the same number, not {self.ctx.world_size}"
                )
            # A different process count cannot replay the old streams; start fresh ones.
            seed_everything(self.config.seed + 1000 * self.epoch + self.ctx.rank)
        self.log.truncate_after(self.global_step)

    def _checkpoint(self) -> dict[str, Any]:
        """The full training state at the current position (collective: every rank calls it)."""
        rank_states = self.ctx.gather_to_main({"rng": capture_rng_state(), "meters": self.meters.state_dict()})
        if not self.ctx.is_main:
            return {}
        state: dict[str, Any] = {
            "format": FORMAT,
            "mobilebench_version": __version__,
            "torch_version": str(torch.__version__),
            "git_revision": self.git_revision,
            "arch": self.config.arch,
            "arch_options": dict(self.config.arch_options),
            "num_classes": len(self.classes),
            "classes": self.classes,
            "input_size": self.config.recipe.input_size,
            "dataset": {
                "kind": self.config.data.kind,
                "root": str(self.config.data.root) if self.config.data.root else None,
            },
            "recipe": self.config.recipe.to_dict(),
            "run": {
                "seed": self.config.seed,
                "deterministic": self.config.deterministic,
                "feature_module": self.config.feature_module,
                "checkpoint_every_steps": self.config.checkpoint_every_steps,
            },
            "world_size": self.ctx.world_size,
            "epoch": self.epoch,
            "batch": self.batch,
            "global_step": self.global_step,
            "completed_epochs": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {
                "epoch": self.epoch,
                "batch": self.batch,
                "steps_per_epoch": self.steps_per_epoch,
                "lr": self.schedule.lr_at(self.epoch, self.batch),
            },
            "scaler": self.scaler.state_dict(),
            "loss": self.criterion.state_dict() if self.criterion is not None else {},
            "sampler": {"seed": self.config.seed, "epoch": self.epoch, "start_batch": self.batch},
            "rank_states": rank_states,
            "metrics": self.metrics,
            "best_top1": self.best_top1,
        }
        if self.ema is not None:
            state["model_ema"] = self.ema.state_dict()
        return state

    def _sync_buffers(self) -> None:
        self.ctx.average_buffers(self.model)
        if self.ema is not None:
            self.ctx.average_buffers(self.ema.module)

    def _save(self, *, best: bool) -> None:
        state = self._checkpoint()
        if self.ctx.is_main:
            save_atomic(state, self.out_dir / LAST)
            if best:
                save_atomic(weights_only(state), self.out_dir / BEST)

    # -- the loop ----------------------------------------------------------------------

    def _step(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns the loss and the number of top-1 hits (device tensors)."""
        images = images.to(self.ctx.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(self.ctx.device, non_blocking=True)
        autocast = (
            torch.autocast(self.ctx.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None else nullcontext()
        )
        with autocast:
            logits, features = self.net(images)
            if self.criterion is not None:
                loss = self.criterion(logits, targets, features)
            else:
                loss = nn.functional.cross_entropy(logits.float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        correct = (logits.detach().argmax(dim=1) == targets).sum()
        return loss.detach(), correct

    def _check_finite(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise MobilebenchError(
                f"the loss became {loss} at epoch {self.epoch + 1} step {self.batch}; "
                "lower the learning rate (--lr) or check the data"
            )

    def _evaluate(self, progress: TrainProgress) -> dict[str, Any]:
        def run(model: nn.Module, label: str) -> Accuracy:
            return evaluate(
                model,
                self.val_loader,
                self.ctx,
                autocast_dtype=self.amp_dtype,
                channels_last=self.channels_last,
                progress=progress,
                label=label,
            )

        result: dict[str, Any] = {}
        plain = run(self.model, f"eval {self.epoch + 1}")
        result.update(val_top1=plain.top1, val_top5=plain.top5, val_count=plain.count)
        if self.ema is not None:
            ema = run(self.ema.module, f"eval EMA {self.epoch + 1}")
            result.update(ema_top1=ema.top1, ema_top5=ema.top5)
        return result

    def run(self) -> TrainResult:
        recipe = self.config.recipe
        with self.progress as progress:
            if self.stored is not None and self.epoch >= recipe.epochs:
                progress.print(f"{self.out_dir} already completed {self.epoch} epochs; raise --epochs to continue")
            elif self.stored is not None:
                progress.print(f"resuming {self.out_dir / LAST} at epoch {self.epoch + 1} batch {self.batch}")
            while self.epoch < recipe.epochs:
                self._train_epoch(progress)
        return TrainResult(
            out_dir=self.out_dir, completed_epochs=self.epoch, metrics=self.metrics, best_top1=self.best_top1
        )

    def _train_epoch(self, progress: TrainProgress) -> None:
        config, recipe, ctx = self.config, self.config.recipe, self.ctx
        self.net.train()
        self.train_sampler.set_epoch(self.epoch, self.batch)
        task = progress.start(f"epoch {self.epoch + 1}/{recipe.epochs}", self.steps_per_epoch, self.batch)
        started = time.perf_counter()
        images_at_start = self.meters.seen
        lr = self.schedule.lr_at(self.epoch, self.batch)
        for images, targets in self.train_loader:
            lr = self.schedule.apply(self.optimizer, self.epoch, self.batch)
            loss_t, correct = self._step(images, targets)
            self.meters.update(loss_t, correct, len(targets))
            self.batch += 1
            self.global_step += 1
            log_now = bool(config.log_every_steps) and self.global_step % config.log_every_steps == 0
            if log_now or self.global_step % SYNC_EVERY_STEPS == 0 or self.batch == self.steps_per_epoch:
                loss = loss_t.item()
                self._check_finite(loss)
                progress.advance(task, info=f"loss {loss:.4f} lr {lr:.3g}")
            else:
                progress.advance(task)
            if log_now:
                self.log.write(
                    {
                        "event": "step",
                        "epoch": self.epoch,
                        "batch": self.batch,
                        "step": self.global_step,
                        "lr": lr,
                        "loss": loss,
                    }
                )
            if (
                config.checkpoint_every_steps
                and self.global_step % config.checkpoint_every_steps == 0
                and self.batch < self.steps_per_epoch
            ):
                self._sync_buffers()
                self._save(best=False)

        loss_sum, correct, seen = ctx.all_reduce_sum([*self.meters.sums.tolist(), float(self.meters.seen)])
        local_images = self.meters.seen - images_at_start
        elapsed = time.perf_counter() - started
        record: dict[str, Any] = {
            "event": "epoch",
            "epoch": self.epoch,
            "step": self.global_step,
            "lr": lr,
            "train_loss": loss_sum / max(seen, 1),
            "train_top1": 100.0 * correct / max(seen, 1),
            "epoch_time_s": elapsed,
            "images_per_s": local_images * ctx.world_size / max(elapsed, 1e-9),
        }
        self._sync_buffers()  # before evaluation: every rank scores with the same statistics
        last_epoch = self.epoch + 1 == recipe.epochs
        evaluated = (self.epoch + 1) % recipe.eval_every_epochs == 0 or last_epoch
        if evaluated:
            record.update(self._evaluate(progress))
        self.epoch, self.batch, self.meters = self.epoch + 1, 0, _Meters(ctx.device)
        improved = False
        if evaluated:
            top1 = max(record["val_top1"], record.get("ema_top1", -math.inf))
            improved = top1 > self.best_top1
            self.best_top1 = max(self.best_top1, top1)
            self.metrics = {k: v for k, v in record.items() if k != "event"}
        record["best_top1"] = self.best_top1 if self.best_top1 > -math.inf else None
        self.log.write(record)
        summary = f"loss {record['train_loss']:.4f}"
        if evaluated:
            summary += f" val top-1 {record['val_top1']:.2f}%"
            if "ema_top1" in record:
                summary += f" EMA {record['ema_top1']:.2f}%"
        progress.finish(task, summary, keep=True)
        self._save(best=improved)
