"""``mobilebench export``: a model to a parity-checked .pte (ExecuTorch/XNNPACK) or .onnx."""

from __future__ import annotations

import csv
import enum
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mobilebench.export import Artifact


class Runtime(str, enum.Enum):
    executorch = "executorch"
    onnx = "onnx"


class Dtype(str, enum.Enum):
    fp32 = "fp32"
    int8 = "int8"


class OutputFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"


CSV_COLUMNS = (
    "name",
    "runtime",
    "dtype",
    "path",
    "output",
    "sha256",
    "size_bytes",
    "cached",
    "weights",
    "parity_max_abs_diff",
    "parity_relative",
    "top1_agreement",
    "delegated_ops",
    "portable_ops",
)


def summary(artifact: Artifact, output: Path | None) -> dict[str, Any]:
    """The flat facts shown by every output format (JSON adds the full provenance)."""
    prov = artifact.provenance
    parity = prov.get("parity") or {}
    delegation = prov.get("delegation") or {}
    return {
        "name": prov["model"]["name"],
        "runtime": artifact.runtime,
        "dtype": artifact.dtype,
        "path": str(artifact.path),
        "output": str(output) if output else None,
        "sha256": artifact.sha256,
        "size_bytes": prov["artifact"]["size_bytes"],
        "cached": artifact.cached,
        "weights": prov["model"]["weights"],
        "parity_max_abs_diff": parity.get("max_abs_diff"),
        "parity_relative": parity.get("relative_max_abs_diff"),
        "top1_agreement": parity.get("top1_agreement"),
        "delegated_ops": delegation.get("delegated_ops"),
        "portable_ops": ", ".join(f"{op} x{n}" for op, n in (delegation.get("portable_op_counts") or {}).items())
        if delegation
        else None,
    }


def _print_table(artifact: Artifact, output: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    prov = artifact.provenance
    row = summary(artifact, output)
    parity = prov.get("parity") or {}
    table = Table(title=f"{row['name']} -> {artifact.runtime} {artifact.dtype}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("artifact", row["path"] + (" (from cache)" if artifact.cached else ""))
    if output:
        table.add_row("copied to", str(output))
    table.add_row("size", f"{row['size_bytes'] / 1e6:.2f} MB")
    table.add_row("sha256", artifact.sha256)
    table.add_row(
        "input",
        "x".join(map(str, artifact.input_shape))
        + (" (dynamic batch)" if prov["artifact"].get("dynamic_batch") else ""),
    )
    weights = prov["model"]["weights"]
    if weights == "checkpoint":
        weights += f" {prov['model']['checkpoint']} (sha256 {prov['model']['checkpoint_sha256'][:12]})"
    table.add_row("weights", weights)
    if not parity:
        table.add_row("parity", prov.get("verification") or "not checked")
    else:
        verdict = (
            f"max abs diff {parity['max_abs_diff']:.3g} "
            f"({parity['relative_max_abs_diff']:.3g} x output scale {parity['output_scale']:.3g})"
        )
        if artifact.dtype == "fp32":
            verdict += f", tolerance {parity['tolerance']:g}: passed"
        else:
            verdict += f"; top-1 agreement with fp32 {parity['top1_agreement']:.0%} over {parity['inputs']} inputs"
        table.add_row("parity", f"{verdict} [{parity['runtime']}]")
    if delegation := prov.get("delegation"):
        table.add_row(
            "delegation",
            f"{delegation['delegated_ops']} ops in {delegation['delegates']} XNNPACK delegate(s); "
            f"portable CPU ops: {row['portable_ops'] or 'none'}",
        )
    if calibration := prov.get("calibration"):
        if calibration["source"] == "images":
            text = f"{calibration['images']} images from {calibration['dir']}"
        else:
            text = f"{calibration['inputs']} synthetic inputs ({calibration['generator']})"
        table.add_row("calibration", text)
    table.add_row("export time", f"{prov['export_seconds']:.1f} s")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def command(
    name: Annotated[str, typer.Argument(help="Model card, architecture name, or checkpoint file (with --arch).")],
    runtime: Annotated[
        Runtime, typer.Option("--runtime", help="Target runtime.", case_sensitive=False)
    ] = Runtime.executorch,
    dtype: Annotated[
        Dtype,
        typer.Option("--dtype", help="fp32, or int8 (PT2E static, XNNPACK; ExecuTorch only).", case_sensitive=False),
    ] = Dtype.fp32,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Weights file (overrides the card's).")
    ] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture of a checkpoint file given as NAME.")] = None,
    input_size: Annotated[
        int | None, typer.Option("--input-size", help="Input side in pixels (default: card, else 224).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also copy the artifact to this file or folder.")
    ] = None,
    calibration_dir: Annotated[
        Path | None,
        typer.Option("--calibration-dir", help="int8: calibrate on images in this folder (default: synthetic inputs)."),
    ] = None,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Leave the batch dimension dynamic.")] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Artifact cache folder (default: <user cache>/mobilebench/artifacts)."),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.", case_sensitive=False)
    ] = OutputFormat.table,
) -> None:
    """Export to ExecuTorch (.pte, XNNPACK) or ONNX, check it against PyTorch, cache it."""
    from mobilebench.export import ExportOptions, copy_atomic, export_model, resolve_output
    from mobilebench.zoo.resolve import resolve_model

    options = ExportOptions(
        runtime=runtime.value, dtype=dtype.value, dynamic_batch=dynamic_batch, calibration_dir=calibration_dir
    )
    resolved = resolve_model(name, checkpoint=checkpoint, arch=arch, input_size=input_size)
    target = (
        resolve_output(output, name=resolved.name, runtime=options.runtime, dtype=options.dtype) if output else None
    )
    artifact = export_model(resolved, options, cache_dir=cache_dir, progress=True)
    if target is not None:
        copy_atomic(artifact.path, target)

    if fmt is OutputFormat.json:
        payload = {
            **summary(artifact, target),
            "input_shape": list(artifact.input_shape),
            "provenance": artifact.provenance,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    elif fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerow(summary(artifact, target))
        sys.stdout.write(buffer.getvalue())
    else:
        _print_table(artifact, target)
