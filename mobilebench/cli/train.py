"""``mobilebench train``: train a zoo architecture with one of the paper's recipes.

Multi-GPU: ``torchrun --nproc-per-node 2 -m mobilebench.cli.main train ...`` (every
process runs this command; rank 0 writes the outputs).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mobilebench.cli.parsing import DATASET_HELP, add_format_option, bounded, default_workers
from mobilebench.train.datasets import DATASET_KINDS
from mobilebench.train.recipes import LOSSES, RECIPES


def parse_arch_options(items: list[str]) -> dict[str, object]:
    from mobilebench.train.recipes import parse_set_option

    options: dict[str, object] = {}
    for item in items:
        key, value = parse_set_option(item)
        options[key] = value
    return options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch", metavar="NAME", required=True, help="zoo architecture to train (see `mobilebench models`)"
    )
    parser.add_argument(
        "--out", metavar="DIR", type=Path, required=True, help="output folder: last.pt, best.pt, log.jsonl"
    )
    parser.add_argument(
        "--recipe", choices=tuple(RECIPES), default="imagenet", help="the paper's recipe; digits: smoke runs"
    )
    parser.add_argument("--data", metavar="PATH", type=Path, help="dataset location (see --dataset)")
    parser.add_argument("--dataset", choices=DATASET_KINDS, default="imagefolder", help=DATASET_HELP)
    parser.add_argument("--loss", choices=LOSSES, help="bias: Bias Loss (default: the recipe's, ce)")
    parser.add_argument("--epochs", metavar="N", type=bounded(int, minimum=1), help="override the recipe's epochs")
    parser.add_argument(
        "--batch-size", metavar="N", type=bounded(int, minimum=1), help="total batch over all processes (default: the recipe's)"
    )
    parser.add_argument("--lr", metavar="LR", type=bounded(float, above=0, maximum=100), help="peak learning rate (not rescaled with the batch size)")
    parser.add_argument("--config", metavar="PATH", type=Path, help="TOML file of recipe overrides (flat key = value)")
    parser.add_argument(
        "--set",
        dest="sets",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a recipe key (repeatable)",
    )
    parser.add_argument(
        "--arch-option",
        dest="arch_options",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="architecture option, e.g. width_mult=0.5 (repeatable)",
    )
    parser.add_argument(
        "--feature-module", metavar="NAME", help="module whose output Bias Loss reads (default: forward_features)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    parser.add_argument(
        "--seed", metavar="N", type=bounded(int, minimum=0), default=0, help="seed for initialisation, data order and augmentation"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic kernels: bit-identical reruns (slower on GPU)"
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        type=bounded(int, minimum=0),
        help="loader processes per process (default: the cores shared out, at most 8)",
    )
    parser.add_argument(
        "--checkpoint-every-steps",
        metavar="N",
        type=bounded(int, minimum=0),
        default=0,
        help="also checkpoint mid-epoch every N steps (0: off)",
    )
    parser.add_argument(
        "--log-every-steps", metavar="N", type=bounded(int, minimum=0), default=50, help="step records in log.jsonl"
    )
    parser.add_argument("--show-recipe", action="store_true", help="print the effective recipe as TOML and exit")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    add_format_option(parser, ("table", "csv", "json"), help="final summary format")


def run(args: argparse.Namespace) -> None:
    """Train with the paper's recipe (Bias Loss with --loss bias); resumable, DDP under torchrun."""
    from mobilebench.cli.console import emit
    from mobilebench.errors import UsageError
    from mobilebench.train.recipes import build_recipe, recipe_to_toml

    effective = build_recipe(
        args.recipe,
        config_file=args.config,
        sets=args.sets,
        explicit={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "loss": args.loss},
    )
    if args.show_recipe:
        print(recipe_to_toml(effective), end="")
        return
    if args.dataset != "digits" and args.data is None:
        raise UsageError(f"--data is required for --dataset {args.dataset}")

    from mobilebench.cli.progress import training_progress
    from mobilebench.train.data import DataConfig
    from mobilebench.train.loop import TrainConfig, train

    workers = default_workers() if args.workers is None else args.workers
    result = train(
        TrainConfig(
            arch=args.arch,
            recipe=effective,
            data=DataConfig(kind=args.dataset, root=args.data, workers=workers),
            out_dir=args.out,
            arch_options=parse_arch_options(args.arch_options),
            feature_module=args.feature_module,
            seed=args.seed,
            deterministic=args.deterministic,
            resume=args.resume,
            checkpoint_every_steps=args.checkpoint_every_steps,
            log_every_steps=args.log_every_steps,
        ),
        progress=training_progress(args.progress),
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return
    metrics = result.metrics
    row = {
        "arch": args.arch,
        "recipe": effective.name,
        "loss": effective.loss,
        "epochs": result.completed_epochs,
        "val_top1": _rounded(metrics.get("val_top1")),
        "val_top5": _rounded(metrics.get("val_top5")),
        "ema_top1": _rounded(metrics.get("ema_top1")),
        "best_top1": _rounded(result.best_top1 if result.best_top1 > float("-inf") else None),
        "out": str(args.out),
    }
    emit(list(row), [row], args.format, title="training finished")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
