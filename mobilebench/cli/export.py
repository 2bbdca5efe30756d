"""``mobilebench export``: a model to a parity-checked .pte (ExecuTorch/XNNPACK) or .onnx."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mobilebench.cli.console import console, echo_err
from mobilebench.cli.parsing import add_calibration_option, add_format_option, bounded
from mobilebench.errors import UsageError
from mobilebench.export import Artifact, ExportHooks
from mobilebench.text import printable

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


class StagesDisplay(ExportHooks):
    """An export's stages as a rich progress list on stderr: a spinner per running
    stage, a tick and its time when done, a red cross where it failed."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> StagesDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def started(self, title: str) -> None:
        if not self.enabled:
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        # Bound now: the exporter swaps sys.stderr while the tool chain works.
        err = console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}", markup=False),
            TextColumn("{task.fields[detail]}", style="dim", markup=False),
            TimeElapsedColumn(),
            console=err,
        )
        self._progress.start()
        err.print(printable(title), style="bold")

    def stage_started(self, stage: str, label: str, total: int | None = None) -> None:
        if self._progress is None:
            return
        detail = f"0/{total}" if total else ""
        self._tasks[stage] = self._progress.add_task(label, total=total, detail=detail)

    def advanced(self, stage: str) -> None:
        if self._progress is None:
            return
        task = self._progress.tasks[self._tasks[stage]]
        done = int(task.completed) + 1
        self._progress.update(self._tasks[stage], completed=done, detail=f"{done}/{int(task.total or 0)}")

    def stage_finished(self, stage: str, seconds: float, *, failed: bool = False) -> None:
        if self._progress is None:
            return
        task = self._tasks[stage]
        if failed:
            label = self._progress.tasks[task].description
            self._progress.remove_task(task)
            self._progress.console.print(f"✗ {label}", style="red")
            return
        total = self._progress.tasks[task].total or 1
        self._progress.update(task, total=total, completed=total)


def _print_table(artifact: Artifact, output: Path | None) -> None:
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
        text = f"{calibration['label']} (sha256 {calibration['inputs_sha256'][:12]})"
        table.add_row("calibration", text + (" - synthetic, not real images" if calibration["synthetic"] else ""))
    table.add_row("export time", f"{prov['export_seconds']:.1f} s")
    console().print(table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", metavar="NAME", help="model card, architecture name, checkpoint file, import path or .pt2 program"
    )
    # Case-insensitive, like --format: `--dtype INT8` works.
    parser.add_argument("--runtime", type=str.lower, choices=("executorch", "onnx"), default="executorch", help="target runtime")
    parser.add_argument(
        "--dtype", type=str.lower, choices=("fp32", "int8"), default="fp32", help="int8: PT2E static, XNNPACK; executorch only"
    )
    parser.add_argument("--checkpoint", metavar="PATH", type=Path, help="weights file (overrides the card's)")
    parser.add_argument("--arch", metavar="ARCH", help="architecture of a checkpoint that does not say (not a training one)")
    parser.add_argument(
        "--input-size",
        metavar="PIXELS",
        type=bounded(int, minimum=1),
        help="input side in pixels (default: the checkpoint's or card's, else 224)",
    )
    parser.add_argument(
        "--num-classes", metavar="N", type=bounded(int, minimum=1), help="outputs (default: the checkpoint's or card's, else 1000)"
    )
    parser.add_argument("--data", metavar="PATH", type=Path, help="int8: where --calibration cifar100/imagefolder data is")
    parser.add_argument("--output", metavar="PATH", type=Path, help="also copy the artifact to this file or folder")
    add_calibration_option(parser)
    parser.add_argument("--dynamic-batch", action="store_true", help="leave the batch dimension dynamic")
    parser.add_argument(
        "--cache-dir", metavar="DIR", type=Path, help="artifact cache folder (default: <user cache>/mobilebench/artifacts)"
    )
    add_format_option(parser, ("table", "csv", "json"), help="json: the summary and the full provenance")


def run(args: argparse.Namespace) -> None:
    """Export to ExecuTorch (.pte, XNNPACK) or ONNX, check it against PyTorch, cache it."""
    from mobilebench.export import ExportOptions, copy_atomic, export_model, resolve_output
    from mobilebench.report.formats import render
    from mobilebench.train.calibration import calibration_for
    from mobilebench.zoo.resolve import resolve_model

    if args.calibration is not None and args.dtype != "int8":
        raise UsageError("--calibration only applies to int8 exports; add --dtype int8")
    ExportOptions(runtime=args.runtime, dtype=args.dtype)  # the combination, before any work
    resolved = resolve_model(
        args.name, checkpoint=args.checkpoint, arch=args.arch, input_size=args.input_size, num_classes=args.num_classes
    )
    for warning in resolved.warnings:
        echo_err(f"warning: {printable(warning)}")
    calibration = calibration_for(resolved, args.calibration, data=args.data) if args.dtype == "int8" else None
    options = ExportOptions(
        runtime=args.runtime, dtype=args.dtype, dynamic_batch=args.dynamic_batch, calibration=calibration
    )
    target = (
        resolve_output(args.output, name=resolved.name, runtime=options.runtime, dtype=options.dtype)
        if args.output
        else None
    )
    with StagesDisplay() as display:
        artifact = export_model(resolved, options, cache_dir=args.cache_dir, hooks=display)
    if target is not None:
        copy_atomic(artifact.path, target)

    if args.format == "json":
        # One JSON document (not a list of rows): the artifact's summary and provenance.
        payload = {
            **summary(artifact, target),
            "input_shape": list(artifact.input_shape),
            "provenance": artifact.provenance,
        }
        print(json.dumps(payload, indent=2))
    elif args.format == "csv":
        print(render(CSV_COLUMNS, [summary(artifact, target)], "csv"), end="")
    else:
        _print_table(artifact, target)
