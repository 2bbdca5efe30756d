"""``mobilebench flops``: parameters and FLOPs per model (the cost half of Table 1)."""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from mobilebench.errors import UsageError


class OutputFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _millions(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value / 1e6:.{digits}f}M"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _write_csv_atomically(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    """Write rows as CSV via a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stdout_console():
    """A rich console for tables; wide when piped, so columns are not cut to 80 characters."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _print_csv(columns: list[str], rows: list[dict[str, object]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Model cards, architecture names or checkpoint files (with --arch). Default: every card."),
    ] = None,
    input_size: Annotated[int | None, typer.Option("--input-size", help="Input side in pixels (default: the card's, else 224).")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture of a checkpoint file given as NAME.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.", case_sensitive=False)] = OutputFormat.table,
    by_module: Annotated[
        int | None, typer.Option("--by-module", min=1, metavar="DEPTH", help="Per-module FLOPs down to this depth.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Also write Table 1 (cost + accuracy) as CSV here.")] = None,
) -> None:
    """Count parameters and FLOPs (fvcore: one multiply-add = one flop), cross-checked with PyTorch."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from mobilebench.flops import TABLE1_COLUMNS, count_flops, table1_rows
    from mobilebench.zoo.cards import cards_dir, load_cards
    from mobilebench.zoo.resolve import resolve_model

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
        _write_csv_atomically(output, TABLE1_COLUMNS, table1_rows(reports, resolved))
        err.print(f"wrote {output}")

    if by_module is not None:
        rows = [
            {"model": r.model, "module": name, "flops": flops, "share_pct": round(flops / r.flops * 100, 2) if r.flops else 0.0}
            for r in reports
            for name, flops in r.modules_to_depth(by_module).items()
        ]
        if fmt is OutputFormat.json:
            print(json.dumps(rows, indent=2))
        elif fmt is OutputFormat.csv:
            _print_csv(["model", "module", "flops", "share_pct"], rows)
        else:
            table = Table(title=f"fvcore FLOPs by module (depth {by_module})")
            for column in ("model", "module", "flops", "share"):
                table.add_column(column, justify="left" if column in ("model", "module") else "right")
            for row in rows:
                table.add_row(row["model"], row["module"], _millions(row["flops"], 2), f"{row['share_pct']:.1f}%")
            _stdout_console().print(table)
        return

    if fmt is OutputFormat.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2))
    elif fmt is OutputFormat.csv:
        columns = [
            "model", "arch", "input_size", "params", "flops", "conv_linear_flops",
            "paper_params", "params_diff_pct", "paper_flops", "flops_diff_pct",
        ]
        _print_csv(columns, [r.as_dict() for r in reports])
    else:
        table = Table(title="Parameters and FLOPs (fvcore: 1 multiply-add = 1 flop; batch 1)")
        headers = ("model", "input", "params", "FLOPs", "conv+linear (torch)", "paper params", "Δ params",
                   "paper FLOPs", "Δ FLOPs")
        for header in headers:
            table.add_column(header, justify="left" if header == "model" else "right")
        for r in reports:
            table.add_row(
                r.model, str(r.input_size), _millions(r.params, 3), _millions(r.flops), _millions(r.conv_linear_flops),
                _millions(r.paper_params, 1), _pct(r.params_diff_pct), _millions(r.paper_flops, 0), _pct(r.flops_diff_pct),
            )
        _stdout_console().print(table)
