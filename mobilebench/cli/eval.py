"""``mobilebench eval``: top-1/top-5 of a model on a dataset, stored with its checkpoint hash."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mobilebench.cli.train import DATASET_HELP, default_workers


def command(
    name: Annotated[str, typer.Argument(help="Model card, architecture name, or checkpoint file (with --arch).")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset location (see --dataset).")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help=DATASET_HELP)] = "imagefolder",
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Weights to evaluate (default: the card's).")
    ] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture of a checkpoint file given as NAME.")] = None,
    ema: Annotated[bool, typer.Option("--ema", help="Evaluate the EMA weights (model_ema) of the checkpoint.")] = False,
    split: Annotated[
        str | None, typer.Option("--split", help="Split to evaluate (default: val; test for cifar100).")
    ] = None,
    input_size: Annotated[int | None, typer.Option("--input-size", help="Crop size (default: the model's).")] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(
            "--num-classes", min=1, help="Outputs of the model (default: the card's or checkpoint's, else 1000)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 100,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Loader processes.")] = None,
    dataset_name: Annotated[
        str | None,
        typer.Option(
            "--dataset-name",
            help="Name stored with the result (default: cifar100, digits, or the --data folder's name).",
        ),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Results database (default: results/mobilebench.sqlite).")
    ] = None,
    update_card: Annotated[
        bool, typer.Option("--update-card", help="Also write the accuracy into the model card.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Measure top-1/top-5 (single centre crop) and record it in the accuracy table."""
    from mobilebench.report.formats import check_format, emit
    from mobilebench.train.evaluate import EvalRequest, evaluate_named, record_accuracy

    fmt = check_format(fmt, ("table", "csv", "json"))
    result = evaluate_named(
        EvalRequest(
            name=name,
            kind=dataset,
            data=data,
            split=split,
            checkpoint=checkpoint,
            arch=arch,
            ema=ema,
            input_size=input_size,
            num_classes=num_classes,
            batch_size=batch_size,
            workers=default_workers() if workers is None else workers,
            dataset_name=dataset_name,
        ),
        show_progress=progress,
    )
    record_accuracy(result, db=db, update_card=update_card)
    row = result.as_dict()
    row["top1"], row["top5"], row["seconds"] = round(result.top1, 3), round(result.top5, 3), round(result.seconds, 1)
    columns = ["model", "dataset", "split", "weights", "top1", "top5", "count", "input_size", "checkpoint_sha256"]
    if fmt == "json":
        columns = list(row)
    emit(columns, [row], fmt, title="accuracy (%)")
