"""``mobilebench flops``: parameters and FLOPs per model (the cost half of Table 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mobilebench.errors import UsageError


def _millions(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value / 1e6:.{digits}f}M"


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:+.1f}%"


def command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Model cards, architecture names or checkpoint files (with --arch). Default: every card."),
    ] = None,
    input_size: Annotated[int | None, typer.Option("--input-size", help="Input side in pixels (default: the card's, else 224).")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture of a checkpoint file given as NAME.")] = None,
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    by_module: Annotated[
        int | None, typer.Option("--by-module", min=1, metavar="DEPTH", help="Per-module FLOPs down to this depth.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Also write Table 1 (cost + accuracy) as CSV here.")] = None,
) -> None:
    """Count parameters and FLOPs (fvcore: one multiply-add = one flop), cross-checked with PyTorch."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mobilebench.flops import TABLE1_COLUMNS, count_flops, table1_rows
    from mobilebench.files import write_text_atomic
    from mobilebench.report.formats import check_format, emit, to_csv
    from mobilebench.zoo.cards import cards_dir, load_cards
    from mobilebench.zoo.resolve import resolve_model

    fmt = check_format(format, ("table", "csv", "json"))
    if not names:
        names = list(load_cards())
        if not names:
            raise UsageError(f"no model cards in {cards_dir()}; name the models to count")
    resolved = [resolve_model(name, arch=arch, input_size=input_size) for name in names]

    err = Console(stderr=True)
    reports = []
    with Progress(
        TextColumn("counting FLOPs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as progress:
        task = progress.add_task("", total=len(resolved))
        for model in resolved:
            progress.update(task, description=model.name)
            reports.append(count_flops(model))
            progress.advance(task)

    if output is not None:
        write_text_atomic(output, to_csv(TABLE1_COLUMNS, table1_rows(reports, resolved)))
        err.print(f"wrote {output}")

    if by_module is not None:
        rows = [
            {"model": r.model, "module": name, "flops": flops, "share_pct": round(flops / r.flops * 100, 2) if r.flops else 0.0}
            for r in reports
            for name, flops in r.modules_to_depth(by_module).items()
        ]
        if fmt == "table":
            rows = [r | {"flops": _millions(r["flops"], 2), "share_pct": f"{r['share_pct']:.1f}%"} for r in rows]
        emit(["model", "module", "flops", "share_pct"], rows, fmt, title=f"fvcore FLOPs by module (depth {by_module})")
        return

    rows = [r.as_dict() for r in reports]
    if fmt != "table":
        columns = [
            "model", "arch", "input_size", "params", "flops", "conv_linear_flops",
            "paper_params", "params_diff_pct", "paper_flops", "flops_diff_pct",
        ]
        emit(columns if fmt == "csv" else list(rows[0]), rows, fmt)
        return
    display = [
        {
            "model": r.model, "input": r.input_size, "params": _millions(r.params, 3), "FLOPs": _millions(r.flops),
            "conv+linear (torch)": _millions(r.conv_linear_flops), "paper params": _millions(r.paper_params, 1),
            "Δ params": _pct(r.params_diff_pct), "paper FLOPs": _millions(r.paper_flops, 0), "Δ FLOPs": _pct(r.flops_diff_pct),
        }
        for r in reports
    ]
    emit(list(display[0]), display, "table", title="Parameters and FLOPs (fvcore: 1 multiply-add = 1 flop; batch 1)")
