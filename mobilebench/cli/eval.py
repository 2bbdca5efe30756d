"""``mobilebench eval``: top-1/top-5 of a model on a dataset, in eager PyTorch or as its
exported artifact in its own runtime, stored with the checkpoint's and artifact's hashes."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilebench.cli.console import echo_err
from mobilebench.cli.export import StagesDisplay
from mobilebench.cli.parsing import (
    DATASET_HELP,
    add_calibration_option,
    add_db_option,
    add_format_option,
    bounded,
    default_workers,
)
from mobilebench.errors import UsageError
from mobilebench.text import printable

EVAL_COLUMNS = (
    "model", "runtime", "dtype", "dataset", "split", "weights", "top1", "top5", "count", "input_size",
    "checkpoint_sha256", "artifact_sha256",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", metavar="NAME", help="model card, architecture name, checkpoint file, .pt2 program or .pte/.onnx file"
    )
    parser.add_argument(
        "--runtime",
        type=str.lower,
        choices=("eager", "executorch", "onnx"),
        help="what computes the predictions: eager PyTorch, or the exported .pte/.onnx in its runtime "
        "(default: eager; a ready artifact's own runtime)",
    )
    parser.add_argument(
        "--dtype", type=str.lower, choices=("fp32", "int8"), default="fp32", help="the artifact's (int8: executorch)"
    )
    add_calibration_option(parser)
    parser.add_argument("--data", metavar="PATH", type=Path, help="dataset location (default: a training checkpoint's)")
    parser.add_argument(
        "--dataset", metavar="KIND", type=str.lower, help=f"default: a training checkpoint's, else imagefolder. {DATASET_HELP}"
    )
    parser.add_argument("--checkpoint", metavar="PATH", type=Path, help="weights to evaluate (default: the card's)")
    parser.add_argument("--arch", metavar="NAME", help="architecture of a checkpoint that does not say (not a training one)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--ema", action="store_true", help="insist on the checkpoint's EMA weights (model_ema)")
    weights.add_argument("--plain", action="store_true", help="eager: the live weights, not the EMA ones")
    parser.add_argument("--split", metavar="SPLIT", help="split to evaluate (default: val; test for cifar100)")
    parser.add_argument(
        "--input-size", metavar="PIXELS", type=bounded(int, minimum=1), help="crop size (default: the checkpoint's or card's)"
    )
    parser.add_argument(
        "--num-classes",
        metavar="N",
        type=bounded(int, minimum=1),
        help="outputs of the model (default: the checkpoint's or card's, else 1000)",
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
    parser.add_argument(
        "--cache-dir", metavar="DIR", type=Path, help="artifact cache folder (default: <user cache>/mobilebench/artifacts)"
    )
    add_db_option(parser)
    parser.add_argument("--update-card", action="store_true", help="also write the accuracy into the model card")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    add_format_option(parser, ("table", "csv", "json"), help="json: every field")


def run(args: argparse.Namespace) -> None:
    """Measure top-1/top-5 (single centre crop) and record it in the accuracy table."""
    from mobilebench.cli.console import emit
    from mobilebench.cli.progress import training_progress
    from mobilebench.store import ResultsStore
    from mobilebench.train.evaluate import EvalRequest, evaluate_named
    from mobilebench.zoo.cards import get_card, update_card_accuracy

    request = EvalRequest(
        name=args.name,
        dataset=args.dataset,
        data=args.data,
        split=args.split,
        checkpoint=args.checkpoint,
        arch=args.arch,
        weights="ema" if args.ema else "plain" if args.plain else "auto",
        input_size=args.input_size,
        num_classes=args.num_classes,
        runtime=args.runtime,
        dtype=args.dtype,
        calibration=args.calibration,
        batch_size=args.batch_size,
        workers=default_workers() if args.workers is None else args.workers,
        dataset_name=args.dataset_name,
        cache_dir=args.cache_dir,
    )
    if args.calibration is not None and args.dtype != "int8":
        raise UsageError("--calibration only applies to --dtype int8")
    if args.update_card and get_card(args.name) is None:
        raise UsageError(f"--update-card: {args.name} has no model card to update")
    with training_progress(args.progress) as progress, StagesDisplay(enabled=args.progress) as stages:
        result = evaluate_named(request, progress=progress, export_hooks=stages)
    for warning in result.warnings:
        echo_err(f"warning: {printable(warning)}")

    top1, top5 = round(result.top1, 3), round(result.top5, 3)
    with ResultsStore(args.db) as store:
        store.record_accuracy(
            model=result.model,
            checkpoint_sha256=result.checkpoint_sha256,
            dataset=result.dataset,
            top1=top1,
            top5=top5,
            source=result.source,
            runtime=result.runtime,
            dtype=result.dtype,
            artifact_sha256=result.artifact_sha256,
            images=result.count,
        )
    if args.update_card:
        update_card_accuracy(result.model, dataset=result.dataset, top1=top1, top5=top5, source=result.source)
    row = result.as_dict()
    row["top1"], row["top5"], row["seconds"] = top1, top5, round(result.seconds, 1)
    columns = list(row) if args.format == "json" else list(EVAL_COLUMNS)
    emit(columns, [row], args.format, title="accuracy (%)")
