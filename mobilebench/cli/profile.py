"""``mobilebench profile``: measure models on a device and store the runs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from mobilebench.bench.session import ProfileOutcome

TABLE2_MODELS = ("skipnet_m", "ghostnet_130", "mnasnet_a1", "mobilenet_v3_large", "mobilenet_v2")


def command(
    names: Annotated[Optional[list[str]], typer.Argument(help="Model cards or registry names (see `mobilebench models`).", show_default=False)] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="Device profile (see `mobilebench devices`).")] = "host",
    address: Annotated[Optional[str], typer.Option(help="HOST:PORT of an ADB-over-TCP device, overriding the profile.")] = None,
    runtime: Annotated[str, typer.Option(help="executorch or onnx.")] = "executorch",
    dtype: Annotated[str, typer.Option(help="fp32 or int8 (executorch only).")] = "fp32",
    warmup: Annotated[int, typer.Option(help="Untimed warm-up iterations.")] = 10,
    iterations: Annotated[int, typer.Option(help="Timed iterations (the minimum with --target-rel-ci).")] = 50,
    target_rel_ci: Annotated[Optional[float], typer.Option(help="Iterate until the 95% CI of the median is within +-this fraction.")] = None,
    max_iterations: Annotated[Optional[int], typer.Option(help="Upper bound with --target-rel-ci.")] = None,
    cpu: Annotated[Optional[int], typer.Option(help="Core to pin to (default: the profile's).")] = None,
    cooldown_c: Annotated[Optional[float], typer.Option(help="Wait until the pinned core is below this temperature (C).")] = None,
    cooldown_timeout: Annotated[float, typer.Option(help="Give up cooling down after this many seconds.")] = 300.0,
    repeat: Annotated[int, typer.Option(help="Runs per model, interleaved across models (A B A B).")] = 1,
    runner_timeout: Annotated[float, typer.Option(help="Seconds one runner invocation may take.")] = 600.0,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint for a single model.")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Input resolution (default: the card's).")] = None,
    table2: Annotated[bool, typer.Option("--table2", help=f"Profile the paper's Table 2 models: {', '.join(TABLE2_MODELS)}.")] = False,
    devices_file: Annotated[Optional[Path], typer.Option("--devices-file", help="Extra devices.toml, read last (highest priority).")] = None,
    db: Annotated[Optional[Path], typer.Option(help="Results database (default results/mobilebench.sqlite or $MOBILEBENCH_DB).")] = None,
    format: Annotated[str, typer.Option("--format", help="table or json (json: every stored column).")] = "table",
) -> None:
    """Export, push, run pinned to one core, and store the runs with their provenance."""
    from mobilebench.bench.session import ProfileConfig, ProfileSession
    from mobilebench.errors import UsageError
    from mobilebench.report.formats import check_format
    from mobilebench.store import ResultsStore
    from mobilebench.zoo.resolve import resolve_model

    fmt = check_format(format, ("table", "json"))
    names = list(names or [])
    if table2:
        names += [n for n in TABLE2_MODELS if n not in names]
    if not names:
        raise UsageError("name at least one model, or pass --table2")
    if checkpoint is not None and len(names) != 1:
        raise UsageError("--checkpoint applies to a single model")
    config = ProfileConfig(
        device=device,
        address=address,
        runtime=runtime,  # type: ignore[arg-type]
        dtype=dtype,  # type: ignore[arg-type]
        warmup=warmup,
        iterations=iterations,
        target_rel_ci=target_rel_ci,
        max_iterations=max_iterations,
        cpu=cpu,
        cooldown_c=cooldown_c,
        cooldown_timeout_s=cooldown_timeout,
        repeat=repeat,
        runner_timeout_s=runner_timeout,
        devices_file=devices_file,
    )
    models = [resolve_model(name, checkpoint=checkpoint, input_size=input_size) for name in names]
    with ResultsStore(db) as store:
        aborted = store.mark_stale_runs_aborted()
        if aborted:
            typer.echo(f"note: marked {aborted} run(s) of killed profile processes as aborted", err=True)
        hooks = _RichHooks(enabled=fmt == "table")
        session = ProfileSession(config, store, hooks=hooks)
        try:
            with hooks:
                session.run(models)
        finally:
            # Runs completed before a failure are stored; show them before the error.
            _print_outcomes(session.outcomes, fmt)


def _print_outcomes(outcomes: list[ProfileOutcome], fmt: str) -> None:
    from mobilebench.report.formats import emit

    if fmt == "json":
        typer.echo(json.dumps([o.record.as_dict() for o in outcomes], indent=2, default=str))
        return
    # One table per model (its runs in order), in the order the models were profiled.
    by_model: dict[str, list[ProfileOutcome]] = {}
    for outcome in outcomes:
        by_model.setdefault(outcome.model, []).append(outcome)
    for model, runs in by_model.items():
        m = runs[0].record.meta
        device = m.device_profile + (" (emulated)" if m.emulated else "")
        title = f"{model} on {device}: {m.runtime} {m.dtype}, cpu{m.cpu}, {m.runner_name}"
        emit(SUMMARY_COLUMNS, [_summary_row(o) for o in runs], "table", title=title)
    for outcome in outcomes:
        for note in outcome.notes:
            typer.echo(f"warning: {outcome.model} (run {outcome.run_id}): {note}", err=True)


SUMMARY_COLUMNS = ("run", "n", "median ms", "p10-p90 ms", "CV", "95% CI ms", "load ms", "first ms", "temp C", "freq MHz", "warnings")


def _summary_row(outcome: ProfileOutcome) -> dict[str, Any]:
    m, s = outcome.record.meta, outcome.record.stats
    assert s is not None
    temps = "-".join(f"{t:.0f}" for t in (m.temp_c_before, m.temp_c_after) if t is not None)
    freqs = "-".join(f"{f / 1000:.0f}" for f in (m.freq_khz_before, m.freq_khz_after) if f is not None)
    return {
        "run": outcome.run_id,
        "n": s.n,
        "median ms": f"{s.median_ms:.2f}",
        "p10-p90 ms": f"{s.p10_ms:.2f}-{s.p90_ms:.2f}" if s.p10_ms is not None and s.p90_ms is not None else None,
        "CV": f"{s.cv:.1%}" if s.cv is not None else None,
        "95% CI ms": f"{s.ci_low_ms:.2f}-{s.ci_high_ms:.2f}" if s.ci_low_ms is not None else None,
        "load ms": f"{s.load_ms:.1f}" if s.load_ms is not None else None,
        "first ms": f"{s.first_ms:.2f}" if s.first_ms is not None else None,
        "temp C": temps or None,
        "freq MHz": freqs or None,
        "warnings": len(outcome.notes) or None,
    }


class _RichHooks:
    """Draws the session's progress on stderr: a spinner line per stage, bars for pushes
    and iterations; the exporter draws its own steps. Implements
    :class:`mobilebench.bench.session.ProgressHooks` (not subclassed: importing the
    session at module level would slow every command's start)."""

    def __init__(self, *, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
            transient=True,
        )
        self._enabled = enabled
        self._stage = self._progress.add_task("starting", total=None, detail="")
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _RichHooks:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def stage(self, text: str) -> None:
        self._progress.update(self._stage, description=text)

    @contextlib.contextmanager
    def exporting(self, what: str) -> Iterator[bool]:
        # The exporter draws its own step list; two live displays on one terminal
        # garble each other, so ours pauses meanwhile (a cached export draws nothing).
        self._progress.stop()
        try:
            yield self._enabled
        finally:
            self._progress.start()

    def _task(self, key: str, description: str, total: float | None) -> Any:
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(description, total=total, detail="")
        return self._tasks[key]

    def transfer(self, what: str, done_bytes: int, total_bytes: int) -> None:
        task = self._task(f"push:{what}", f"push {what}", total_bytes)
        self._progress.update(task, completed=done_bytes, total=total_bytes, detail=f"{done_bytes / 1e6:.1f}/{total_bytes / 1e6:.1f} MB")

    def iteration(self, done: int, total: int | None) -> None:
        task = self._task("iterations", "iterations", total)
        self._progress.update(task, completed=done, total=total, detail=f"{done}" + (f"/{total}" if total else ""))
