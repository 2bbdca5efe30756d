"""``mobilebench models``: the model cards in models/ and the registered architectures."""

from __future__ import annotations

import csv
import enum
import io
import json
import sys
from typing import Annotated

import typer


class OutputFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"


COLUMNS = ("name", "kind", "arch", "input_size", "num_classes", "checkpoint", "top1", "top5",
           "accuracy_source", "paper_flops", "paper_params", "description")


def _rows() -> list[dict[str, object]]:
    from mobilebench.zoo.cards import load_cards
    from mobilebench.zoo.registry import get_model_entry, list_models

    rows: list[dict[str, object]] = []
    for card in load_cards().values():
        rows.append({
            "name": card.name,
            "kind": "card",
            "arch": card.arch,
            "input_size": card.input_size,
            "num_classes": card.num_classes,
            "checkpoint": str(card.checkpoint) if card.checkpoint else None,
            "top1": card.accuracy.top1 if card.accuracy else None,
            "top5": card.accuracy.top5 if card.accuracy else None,
            "accuracy_source": card.accuracy.source if card.accuracy else None,
            "paper_flops": card.paper.flops if card.paper else None,
            "paper_params": card.paper.params if card.paper else None,
            "description": card.description,
        })
    for name in list_models():
        entry = get_model_entry(name)
        rows.append({column: None for column in COLUMNS} | {
            "name": name, "kind": "arch", "arch": name, "description": entry.description,
        })
    return rows


def command(
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.", case_sensitive=False)] = OutputFormat.table,
) -> None:
    """List model cards (models/*.toml) and the architectures of the registry."""
    rows = _rows()
    if fmt is OutputFormat.json:
        print(json.dumps(rows, indent=2))
        return
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return

    from rich.console import Console
    from rich.table import Table

    def show(value: object, scale: float = 1.0, unit: str = "", fmt: str = "g") -> str:
        if value is None:
            return "-"
        return f"{value / scale:{fmt}}{unit}" if isinstance(value, float) else str(value)

    table = Table(title="Models (cards first, then architectures; NAME works with flops/export/profile)")
    for header in ("name", "kind", "arch", "input", "checkpoint", "top-1", "top-5", "paper FLOPs", "paper params", "description"):
        table.add_column(header, justify="right" if header in ("input", "top-1", "top-5", "paper FLOPs", "paper params") else "left")
    for row in rows:
        checkpoint = row["checkpoint"] if row["checkpoint"] else ("random init" if row["kind"] == "card" else "-")
        table.add_row(
            str(row["name"]), str(row["kind"]), str(row["arch"]), show(row["input_size"]), str(checkpoint),
            show(row["top1"], fmt=".1f"), show(row["top5"], fmt=".1f"), show(row["paper_flops"], 1e6, "M"), show(row["paper_params"], 1e6, "M"),
            str(row["description"] or ""),
        )
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
