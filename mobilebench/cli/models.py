"""``mobilebench models``: the model cards in models/ and the registered architectures."""

from __future__ import annotations

import argparse

from mobilebench.cli.parsing import add_format_option

COLUMNS = ("name", "kind", "arch", "input_size", "num_classes", "checkpoint", "top1", "top5",
           "accuracy_source", "paper_flops", "paper_params", "description")


def _rows() -> tuple[list[dict[str, object]], dict[str, str]]:
    """The rows of the cards that read and of the architectures; and the broken cards."""
    from mobilebench.zoo.cards import scan_cards
    from mobilebench.zoo.registry import get_model_entry, list_models

    cards, broken = scan_cards()
    rows: list[dict[str, object]] = []
    for card in cards.values():
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
    for name, error in broken.items():
        rows.append({column: None for column in COLUMNS} | {"name": name, "kind": "card (broken)", "description": error})
    for name in list_models():
        entry = get_model_entry(name)
        rows.append({column: None for column in COLUMNS} | {
            "name": name, "kind": "arch", "arch": name, "description": entry.description,
        })
    return rows, broken


def _display(row: dict[str, object]) -> dict[str, object]:
    """The row as the rich table shows it: millions for costs, 'random init' for no checkpoint."""

    def millions(value: object) -> str | None:
        return f"{value / 1e6:g}M" if isinstance(value, (int, float)) else None

    checkpoint = row["checkpoint"] or ("random init" if row["kind"] == "card" else None)
    return row | {"checkpoint": checkpoint, "paper_flops": millions(row["paper_flops"]),
                  "paper_params": millions(row["paper_params"])}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_format_option(parser, ("table", "csv", "json"))


def run(args: argparse.Namespace) -> None:
    """List model cards (models/*.toml) and the architectures of the registry."""
    from mobilebench.cli.console import echo_err, emit

    rows, broken = _rows()
    if args.format == "table":
        columns = [c for c in COLUMNS if c not in ("num_classes", "accuracy_source", "description")]
        emit(columns, [_display(r) for r in rows], "table",
             title="Models (cards first, then architectures; NAME works with flops/export/profile)")
    else:
        emit(COLUMNS, rows, args.format)
    for error in broken.values():
        echo_err(f"warning: {error}")
