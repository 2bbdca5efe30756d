"""``mobilebench eval``: top-1/top-5 of a model on a dataset, stored with its checkpoint hash."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilebench.cli.parsing import add_db_option, add_format_option, bounded
from mobilebench.cli.train import DATASET_HELP, DATASET_KINDS, default_workers

EVAL_COLUMNS = ("model", "dataset", "split", "weights", "top1", "top5", "count", "input_size", "checkpoint_sha256")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="model card, architecture name, or checkpoint file (with --arch)")
    parser.add_argument("--data", metavar="PATH", type=Path, help="dataset location (see --dataset)")
    parser.add_argument("--dataset", choices=DATASET_KINDS, default="imagefolder", help=DATASET_HELP)
    parser.add_argument("--checkpoint", metavar="PATH", type=Path, help="weights to evaluate (default: the card's)")
    parser.add_argument("--arch", metavar="NAME", help="architecture of a checkpoint file given as NAME")
    parser.add_argument("--ema", action="store_true", help="evaluate the EMA weights (model_ema) of the checkpoint")
    parser.add_argument("--split", metavar="SPLIT", help="split to evaluate (default: val; test for cifar100)")
    parser.add_argument("--input-size", metavar="PIXELS", type=bounded(int, minimum=1), help="crop size (default: the model's)")
    parser.add_argument(
        "--num-classes",
        metavar="N",
        type=bounded(int, minimum=1),
        help="outputs of the model (default: the card's or checkpoint's, else 1000)",
    )
    parser.add_argument("--batch-size", metavar="N", type=bounded(int, minimum=1), default=100, help="images per batch")
    parser.add_argument(
        "--workers",
        metavar="N",
        type=bounded(int, minimum=0),
        help="loader processes (default: the cores less one, at most 8)",
    )
    parser.add_argument(
        "--dataset-name",
        metavar="NAME",
        help="name stored with the result (default: cifar100, digits, or the --data folder's name)",
    )
    add_db_option(parser)
    parser.add_argument("--update-card", action="store_true", help="also write the accuracy into the model card")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    add_format_option(parser, ("table", "csv", "json"), help="json: every field")


def run(args: argparse.Namespace) -> None:
    """Measure top-1/top-5 (single centre crop) and record it in the accuracy table."""
    from mobilebench.cli.console import emit
    from mobilebench.cli.progress import training_progress
    from mobilebench.train.evaluate import EvalRequest, evaluate_named, record_accuracy

    result = evaluate_named(
        EvalRequest(
            name=args.name,
            kind=args.dataset,
            data=args.data,
            split=args.split,
            checkpoint=args.checkpoint,
            arch=args.arch,
            ema=args.ema,
            input_size=args.input_size,
            num_classes=args.num_classes,
            batch_size=args.batch_size,
            workers=default_workers() if args.workers is None else args.workers,
            dataset_name=args.dataset_name,
        ),
        progress=training_progress(args.progress),
    )
    record_accuracy(result, db=args.db, update_card=args.update_card)
    row = result.as_dict()
    row["top1"], row["top5"], row["seconds"] = round(result.top1, 3), round(result.top5, 3), round(result.seconds, 1)
    columns = list(row) if args.format == "json" else list(EVAL_COLUMNS)
    emit(columns, [row], args.format, title="accuracy (%)")
