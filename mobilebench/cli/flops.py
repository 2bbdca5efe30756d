"""``mobilebench flops``: parameters and FLOPs per model (the cost half of Table 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import add_format_option, bounded
from mobilebench.errors import UsageError
from mobilebench.text import printable


def _millions(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value / 1e6:.{digits}f}M"


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:+.1f}%"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="model cards, architecture names or checkpoint files (with --arch); default: every card"
    )
    parser.add_argument(
        "--input-size", metavar="PIXELS", type=bounded(int, minimum=1), help="input side in pixels (default: the card's, else 224)"
    )
    parser.add_argument("--arch", metavar="ARCH", help="architecture of a checkpoint file given as NAME")
    add_format_option(parser, ("table", "csv", "json"))
    parser.add_argument("--by-module", metavar="DEPTH", type=bounded(int, minimum=1), help="per-module FLOPs down to this depth")
    parser.add_argument("--output", metavar="PATH", type=Path, help="also write Table 1 (cost + accuracy) as CSV here")


def run(args: argparse.Namespace) -> None:
    """Count parameters and FLOPs (fvcore: one multiply-add = one flop), cross-checked with PyTorch."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mobilebench.cli.console import console, emit
    from mobilebench.files import write_text_atomic
    from mobilebench.flops import count_flops
    from mobilebench.report.formats import to_csv
    from mobilebench.report.table1 import TABLE1_COLUMNS, table1_rows
    from mobilebench.zoo.cards import cards_dir, load_cards
    from mobilebench.zoo.resolve import resolve_model

    fmt = args.format
    names = args.names or list(load_cards())
    if not names:
        raise UsageError(f"no model cards in {cards_dir()}; name the models to count")
    resolved = [resolve_model(name, arch=args.arch, input_size=args.input_size) for name in names]
    for model in resolved:
        for warning in model.warnings:
            echo_err(f"warning: {printable(warning)}")

    reports = []
    with Progress(
        TextColumn("counting FLOPs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(), console=console(stderr=True), transient=True,
    ) as progress:
        task = progress.add_task("", total=len(resolved))
        for model in resolved:
            progress.update(task, description=model.name)
            reports.append(count_flops(model))
            progress.advance(task)

    if args.output is not None:
        write_text_atomic(args.output, to_csv(TABLE1_COLUMNS, table1_rows(reports, resolved)))
        echo_err(f"wrote {args.output}")

    if args.by_module is not None:
        if fmt == "table":  # fvcore's own table: parameters and FLOPs per module
            for report in reports:
                print(f"{printable(report.model)} (input {report.input_size}): fvcore FLOPs by module, depth {args.by_module}")
                print(report.module_table(args.by_module))
            return
        rows = [
            {"model": r.model, "module": name, "flops": flops, "share_pct": round(flops / r.flops * 100, 2) if r.flops else 0.0}
            for r in reports
            for name, flops in r.modules_to_depth(args.by_module).items()
        ]
        emit(["model", "module", "flops", "share_pct"], rows, fmt)
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
