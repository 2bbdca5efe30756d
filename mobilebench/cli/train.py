"""``mobilebench train``: train a zoo architecture with one of the paper's recipes.

Multi-GPU: ``torchrun --nproc-per-node 2 -m mobilebench.cli.main train ...`` (every
process runs this command; rank 0 writes the outputs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mobilebench.errors import UsageError

DATASET_HELP = (
    "imagefolder (DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg), cifar100 (the python archive "
    "or its extracted folder) or digits (scikit-learn's 8x8 digits upsampled to 32x32; no --data needed)."
)


def default_workers() -> int:
    """Loader processes per training process: the machine's cores shared out, at most 8."""
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, (os.cpu_count() or 1) // max(per_node, 1) - 1))


def parse_arch_options(items: list[str]) -> dict[str, object]:
    from mobilebench.train.recipes import parse_set_option

    options: dict[str, object] = {}
    for item in items:
        key, value = parse_set_option(item)
        options[key] = value
    return options


def command(
    arch: Annotated[str, typer.Option("--arch", help="Zoo architecture to train (see `mobilebench models`).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: last.pt, best.pt, log.jsonl.")],
    recipe: Annotated[str, typer.Option("--recipe", help="imagenet, cifar100 or digits (smoke runs).")] = "imagenet",
    data: Annotated[Path | None, typer.Option("--data", help="Dataset location (see --dataset).")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help=DATASET_HELP)] = "imagefolder",
    loss: Annotated[
        str | None, typer.Option("--loss", help="ce or bias (Bias Loss); default: the recipe's (ce).")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override the recipe's epochs.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Total batch over all processes (recipe's by default).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Peak learning rate (not rescaled with the batch size).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file of recipe overrides (flat key = value).")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe key (repeatable).")
    ] = None,
    arch_option: Annotated[
        list[str] | None,
        typer.Option(
            "--arch-option", metavar="KEY=VALUE", help="Architecture option, e.g. width_mult=0.5 (repeatable)."
        ),
    ] = None,
    feature_module: Annotated[
        str | None,
        typer.Option("--feature-module", help="Module whose output Bias Loss reads (default: forward_features)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for initialisation, data order and augmentation.")] = 0,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic kernels: bit-identical reruns (slower on GPU).")
    ] = False,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Loader processes per process.")] = None,
    checkpoint_every_steps: Annotated[
        int, typer.Option("--checkpoint-every-steps", min=0, help="Also checkpoint mid-epoch every N steps (0: off).")
    ] = 0,
    log_every_steps: Annotated[int, typer.Option("--log-every-steps", min=0, help="Step records in log.jsonl.")] = 50,
    show_recipe: Annotated[
        bool, typer.Option("--show-recipe", help="Print the effective recipe as TOML and exit.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
    fmt: Annotated[str, typer.Option("--format", help="Final summary as table, csv or json.")] = "table",
) -> None:
    """Train with the paper's recipe (Bias Loss with --loss bias); resumable, DDP under torchrun."""
    from mobilebench.report.formats import check_format, emit
    from mobilebench.train.recipes import build_recipe, recipe_to_toml

    fmt = check_format(fmt, ("table", "csv", "json"))
    effective = build_recipe(
        recipe,
        config_file=config,
        sets=sets or [],
        explicit={"epochs": epochs, "batch_size": batch_size, "lr": lr, "loss": loss},
    )
    if show_recipe:
        print(recipe_to_toml(effective), end="")
        return
    from mobilebench.train.datasets import check_dataset_kind

    if check_dataset_kind(dataset) != "digits" and data is None:
        raise UsageError(f"--data is required for --dataset {dataset}")

    from mobilebench.train.data import DataConfig
    from mobilebench.train.loop import TrainConfig, train

    result = train(
        TrainConfig(
            arch=arch,
            recipe=effective,
            data=DataConfig(kind=dataset, root=data, workers=default_workers() if workers is None else workers),
            out_dir=out,
            arch_options=parse_arch_options(arch_option or []),
            feature_module=feature_module,
            seed=seed,
            deterministic=deterministic,
            resume=resume,
            checkpoint_every_steps=checkpoint_every_steps,
            log_every_steps=log_every_steps,
            progress=progress,
        )
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return
    metrics = result.metrics
    row = {
        "arch": arch,
        "recipe": effective.name,
        "loss": effective.loss,
        "epochs": result.completed_epochs,
        "val_top1": _rounded(metrics.get("val_top1")),
        "val_top5": _rounded(metrics.get("val_top5")),
        "ema_top1": _rounded(metrics.get("ema_top1")),
        "best_top1": _rounded(result.best_top1 if result.best_top1 > float("-inf") else None),
        "out": str(out),
    }
    emit(list(row), [row], fmt, title="training finished")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
