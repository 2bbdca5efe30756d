"""``mobilebench profile``: measure models on a device and store the runs."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import (
    add_calibration_option,
    add_db_option,
    add_device_options,
    add_format_option,
    add_iteration_options,
    add_model_options,
    add_run_condition_options,
    add_runtime_options,
    bounded,
    calibrated_exporter,
    profile_config,
)

if TYPE_CHECKING:
    from mobilebench.bench.session import ProfileOutcome

TABLE2_MODELS = ("skipnet_m", "ghostnet_130", "mnasnet_a1", "mobilenet_v3_large", "mobilenet_v2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="model cards or registry names (see `mobilebench models`)")
    add_device_options(parser, several=True)
    add_runtime_options(parser)
    add_calibration_option(parser)
    add_iteration_options(parser)
    parser.add_argument("--repeat", metavar="R", type=bounded(int, minimum=1), default=1, help="runs per model, interleaved across models (A B A B)")
    add_run_condition_options(parser)
    add_model_options(parser)
    parser.add_argument(
        "--table2", action="store_true", help=f"profile the paper's Table 2 models: {', '.join(TABLE2_MODELS)}"
    )
    parser.add_argument(
        "--per-op",
        action="store_true",
        help="a traced run: one row per operator with its time, fvcore's multiply-adds and the achieved GMAC/s "
        "(stored apart from latency runs: tracing costs time)",
    )
    parser.add_argument("--top", metavar="N", type=bounded(int, minimum=1), default=15, help="operators shown with --per-op")
    add_db_option(parser)
    add_format_option(parser, ("table", "csv", "json"), help="csv: the summary rows (with --per-op the operators); json: every stored column")


def run(args: argparse.Namespace) -> None:
    """Export, push, run pinned to one core, and store the runs with their provenance."""
    from mobilebench.bench.hooks import ProgressHooks
    from mobilebench.bench.session import ProfileSession
    from mobilebench.cli.progress import session_progress
    from mobilebench.errors import UsageError
    from mobilebench.store import ResultsStore
    from mobilebench.zoo.resolve import resolve_model

    names = list(args.names)
    if args.table2:
        names += [n for n in TABLE2_MODELS if n not in names]
    if not names:
        raise UsageError("name at least one model, or pass --table2")
    if args.checkpoint is not None and len(names) != 1:
        raise UsageError("--checkpoint applies to a single model")
    devices = args.device or ["host"]
    addresses = args.address or []
    if addresses and len(addresses) != len(devices):
        raise UsageError(f"{len(addresses)} --address for {len(devices)} --device: give one per device, in order")
    configs = [
        profile_config(
            args,
            device=device,
            address=addresses[i] if addresses else None,
            repeat=args.repeat,
            per_op=args.per_op,
        )
        for i, device in enumerate(devices)
    ]
    models = [resolve_model(name, checkpoint=args.checkpoint, input_size=args.input_size) for name in names]
    for model in models:
        for warning in model.warnings:
            echo_err(f"warning: {warning}")
    if args.calibration is not None and args.dtype != "int8":
        raise UsageError("--calibration only applies to --dtype int8")
    export = calibrated_exporter(args.calibration)
    with ResultsStore(args.db) as store:
        aborted = store.mark_stale_runs_aborted()
        if aborted:
            echo_err(f"note: marked {aborted} run(s) of killed profile processes as aborted")
        if len(configs) > 1:
            _profile_on_devices(configs, args.db, models, args.format, export)
            return
        hooks = session_progress() if args.format == "table" else ProgressHooks()
        session = ProfileSession(configs[0], store, hooks=hooks, export=export)
        try:
            with hooks:
                session.run(models)
        finally:
            # Runs completed before a failure are stored; show them before the error.
            _print_outcomes(session.outcomes, args.format, top=args.top)


def _profile_on_devices(configs: list[Any], db: Any, models: list[Any], fmt: str, export: Any) -> None:
    """Every device at once (one worker each); the runs of all, then one line per failure."""
    from mobilebench.bench.hooks import ProgressHooks
    from mobilebench.bench.session import profile_on_devices
    from mobilebench.cli.progress import DeviceLines
    from mobilebench.errors import MobilebenchError

    results = profile_on_devices(
        configs,
        db,
        models,
        hooks_for=(lambda device: DeviceLines(device)) if fmt == "table" else lambda _: ProgressHooks(),
        export=export,
    )
    _print_outcomes([o for r in results for o in r.outcomes], fmt)
    failed = [r for r in results if r.error is not None]
    if failed:
        detail = "; ".join(f"{r.device}: {r.error}" for r in failed)
        raise MobilebenchError(f"{len(failed)} of {len(results)} devices failed: {detail}")


def _print_outcomes(outcomes: list[ProfileOutcome], fmt: str, *, top: int = 15) -> None:
    from mobilebench.cli.console import emit

    if fmt == "json":
        print(json.dumps([_as_json(o) for o in outcomes], indent=2, default=str))
        return
    if fmt == "csv":
        if any(o.ops is not None for o in outcomes):
            from mobilebench.report import ops as op_table

            rows = [{"run": o.run_id, "model": o.model, **row} for o in outcomes if o.ops for row in op_table.op_rows(o.ops.ops)]
            emit(("run", "model", *op_table.COLUMNS), rows, "csv")
        else:
            emit(SUMMARY_COLUMNS, [_summary_row(o) for o in outcomes], "csv")
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
        for outcome in runs:
            if outcome.ops is not None:
                _print_ops(outcome, top)
    for outcome in outcomes:
        for note in outcome.notes:
            echo_err(f"warning: {outcome.model} (run {outcome.run_id}): {note}")


def _print_ops(outcome: ProfileOutcome, top: int) -> None:
    from mobilebench.cli.console import echo_err, emit
    from mobilebench.report import ops as op_table

    profile = outcome.ops
    assert profile is not None
    if profile.variant == "program":
        variant = "the program as measured"
    else:
        variant = f"a per-operator-delegated export, {profile.slowdown:.2f}x slower"
    title = (
        f"run {outcome.run_id}, {outcome.model}: the {min(top, len(profile.ops))} slowest of {len(profile.ops)} operators "
        f"({variant}; medians of {profile.iterations} traced iterations)"
    )
    emit(op_table.COLUMNS, op_table.op_rows(profile.ops, top=top), "table", title=title)
    share = profile.ops_ms / profile.median_ms if profile.median_ms else 0.0
    echo_err(
        f"note: the operators add up to {profile.ops_ms:.3f} ms of the traced run's median {profile.median_ms:.3f} ms "
        f"({share:.0%}); multiply-adds {profile.macs / 1e6:.1f}M of fvcore's {profile.fvcore_macs / 1e6:.1f}M; "
        "a traced run is slower than an untraced one and is stored apart (purpose per-op)"
    )


def _as_json(outcome: ProfileOutcome) -> dict[str, Any]:
    """The stored run; a traced run also has ``ops`` (name, kind, delegate, ms, macs, ...)
    and ``per_op`` (how they add up)."""
    run = outcome.record.as_dict()
    if outcome.ops is not None:
        summary = outcome.ops.as_dict()
        run["ops"] = summary.pop("ops")
        run["per_op"] = summary
    return run


SUMMARY_COLUMNS = (
    "run", "n", "median ms", "p10-p90 ms", "CV", "95% CI ms", "load ms", "warm load ms", "first ms",
    "peak RSS MB", "temp C", "freq MHz", "warnings",
)  # fmt: skip


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
        "warm load ms": f"{s.warm_load_ms:.1f}" if s.warm_load_ms is not None else None,
        "first ms": f"{s.first_ms:.2f}" if s.first_ms is not None else None,
        "peak RSS MB": f"{m.peak_rss_bytes / 2**20:.1f}" if m.peak_rss_bytes is not None else None,
        "temp C": temps or None,
        "freq MHz": freqs or None,
        "warnings": len(outcome.notes) or None,
    }
