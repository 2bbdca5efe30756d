"""``mobilebench eval``: top-1/top-5 of a model on a dataset, in eager PyTorch or as its
exported artifact in its own runtime, stored with the checkpoint's and artifact's hashes;
with ``--device``, whether a device computes the .pte's outputs as this computer does."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobilebench.cli.console import echo_err
from mobilebench.cli.export import StagesDisplay
from mobilebench.cli.parsing import (
    DATASET_HELP,
    add_calibration_option,
    add_db_option,
    add_device_options,
    add_format_option,
    bounded,
    default_workers,
)
from mobilebench.errors import UsageError
from mobilebench.text import printable

if TYPE_CHECKING:
    from mobilebench.bench.agreement import Agreement
    from mobilebench.train.evaluate import EvalResult

EVAL_COLUMNS = (
    "model", "runtime", "dtype", "dataset", "split", "weights", "top1", "top5", "count", "input_size",
    "checkpoint_sha256", "artifact_sha256",
)
DEVICE_COLUMNS = (
    "device", "device_model", "device_abi", "device_runner", "device_inputs", "device_top1_same", "device_max_rel_diff",
    "device_tolerance", "device_agrees",
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
    add_device_options(
        parser,
        default=None,
        help="also run some of the split's images through the .pte on this device (see `mobilebench devices`) "
        "and check its outputs agree with this computer's",
    )
    parser.add_argument(
        "--device-inputs", metavar="N", type=bounded(int, minimum=1), default=20,
        help="images checked on --device, spread evenly over the split",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", metavar="REL", type=bounded(float, minimum=0, maximum=1),
        help="--device: largest accepted |device - host| relative to the output's scale "
        "(default: the dtype's, shown as device_tolerance)",
    )  # fmt: skip
    add_db_option(parser)
    parser.add_argument("--update-card", action="store_true", help="also write the accuracy into the model card")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    add_format_option(parser, ("table", "csv", "json"), help="json: every field")


def run(args: argparse.Namespace) -> int:
    """Measure top-1/top-5 (single centre crop) and record it in the accuracy table; with
    ``--device``, exit 1 when the device's outputs do not agree with this computer's."""
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
        keep_outputs=args.device_inputs if args.device else 0,
    )
    if args.calibration is not None and args.dtype != "int8":
        raise UsageError("--calibration only applies to --dtype int8")
    if args.device and args.runtime in ("eager", "onnx"):
        raise UsageError("--device runs the .pte on the device: use --runtime executorch")
    if args.tolerance is not None and not args.device:
        raise UsageError("--tolerance applies to the --device check")
    if args.update_card and get_card(args.name) is None:
        raise UsageError(f"--update-card: {args.name} has no model card to update")
    with training_progress(args.progress) as progress, StagesDisplay(enabled=args.progress) as stages:
        result = evaluate_named(request, progress=progress, export_hooks=stages)
    for warning in result.warnings:
        echo_err(f"warning: {printable(warning)}")
    agreement = _check_on_device(args, result) if args.device else None

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
    if agreement is None:
        emit(columns, [row], args.format, title="accuracy (%)")
    elif args.format == "table":  # two tables: one row of all columns is too wide to read
        emit(columns, [row], args.format, title="accuracy (%)")
        emit(DEVICE_COLUMNS, [_agreement_row(agreement)], args.format, title="on-device check")
    else:
        device = _agreement_row(agreement)
        emit([*columns, *(device if args.format == "json" else DEVICE_COLUMNS)], [{**row, **device}], args.format)
    if agreement is not None and not agreement.agrees:
        echo_err(
            f"{agreement.device} does not compute what this computer computes: |device - host| reached "
            f"{agreement.max_rel_diff:.3g} of the output's scale (tolerance {agreement.tolerance:g}); "
            f"top-1 the same on {agreement.top1_same} of {agreement.inputs} images"
        )
        return 1
    return 0


def _check_on_device(args: argparse.Namespace, result: EvalResult) -> Agreement:
    """Run the kept images on ``args.device`` and compare (see :mod:`mobilebench.bench.agreement`)."""
    from mobilebench.bench.agreement import check_on_device
    from mobilebench.bench.hooks import ProgressHooks
    from mobilebench.bench.session import ProfileConfig
    from mobilebench.cli.progress import session_progress

    kept = result.host_outputs
    if kept is None:
        raise UsageError("--device checks an exported .pte: use --runtime executorch")
    config = ProfileConfig(
        device=args.device,
        address=args.address,
        devices_file=args.devices_file,
        cpu=args.cpu,
        dtype=result.dtype,
        warmup=0,
        iterations=1,
    )
    hooks = session_progress() if args.progress and args.format == "table" else ProgressHooks()
    with hooks:
        agreement = check_on_device(
            config, kept.artifact, kept.inputs, kept.outputs, tolerance=args.tolerance, hooks=hooks
        )
    for note in agreement.notes:
        echo_err(f"warning: {note}")
    return agreement


def _agreement_row(agreement: Agreement) -> dict[str, Any]:
    return {
        "device": agreement.device,
        "device_model": agreement.device_model,
        "device_abi": agreement.abi,
        "device_runner": agreement.runner,
        "device_inputs": agreement.inputs,
        "device_top1_same": agreement.top1_same,
        "device_max_rel_diff": agreement.max_rel_diff,
        "device_tolerance": agreement.tolerance,
        "device_agrees": agreement.agrees,
    }
