"""``mobilebench plot``: accuracy vs latency, FLOPs or parameters, with the Pareto front;
or (``--x macs --y gmacs``) the operators of one per-op profile."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import add_db_option, bounded, comma_list
from mobilebench.errors import UsageError
from mobilebench.report.plot import X_METRICS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--x", type=str.lower, choices=(*X_METRICS, "macs"), default="latency",
        help="horizontal axis; macs: the operators of a per-op profile (with --y gmacs)",
    )  # fmt: skip
    parser.add_argument(
        "--y", type=str.lower, choices=("top1", "gmacs"), help="vertical axis (default: top1; gmacs with --x macs)"
    )
    parser.add_argument(
        "--run", dest="run_id", metavar="ID", type=bounded(int, minimum=1),
        help="the per-op run for --x macs (default: the newest)",
    )  # fmt: skip
    parser.add_argument(
        "--device", metavar="PROFILE", help="device profile for --x latency (default: the only one with runs)"
    )
    parser.add_argument(
        "--runtime", choices=("executorch", "onnx"), default="executorch", help="runtime of the runs for --x latency"
    )
    parser.add_argument("--dtype", choices=("fp32", "int8"), default="fp32", help="dtype of the runs for --x latency")
    parser.add_argument(
        "--models", metavar="NAME,...", type=comma_list, help="models to plot (default: every model in the database)"
    )
    add_db_option(parser)
    parser.add_argument(
        "--output",
        metavar="PATH",
        type=Path,
        help="figure file, .png or .svg (default: results/figures/accuracy_vs_X[_DEVICE].png)",
    )


def run(args: argparse.Namespace) -> None:
    """Draw top-1 accuracy against latency (or FLOPs/params), one labelled marker per model."""
    from mobilebench.report.plot import cost_points, draw, latency_points
    from mobilebench.store import ResultsStore, database_exists

    y = args.y or ("gmacs" if args.x == "macs" else "top1")
    if (args.x == "macs") != (y == "gmacs"):
        raise UsageError("--x macs goes with --y gmacs: the operators of a per-op profile")
    if args.x == "macs":
        _plot_ops(args)
        return
    metric, names = args.x, args.models
    if metric != "latency" and names and not database_exists(args.db):
        # FLOPs of named models need no measurements: top-1 then comes from model cards.
        data = cost_points(None, metric=metric, models=names)
    else:
        with ResultsStore(args.db, create=False) as store:
            if metric == "latency":
                data = latency_points(store, device=args.device, runtime=args.runtime, dtype=args.dtype, models=names)
            else:
                data = cost_points(store, metric=metric, models=names)
    output = args.output
    if output is None:
        suffix = f"_{args.device}" if args.device else ""
        output = Path("results") / "figures" / f"accuracy_vs_{metric}{suffix}.png"
    draw(data, output)
    for reason in data.skipped:
        echo_err(f"skipped {reason}")
    echo_err(f"wrote {output} ({len(data.points)} models)")


def _plot_ops(args: argparse.Namespace) -> None:
    """Achieved GMAC/s against MACs, one point per operator of a per-op run."""
    from mobilebench.report.ops import draw_ops
    from mobilebench.store import ResultsStore

    with ResultsStore(args.db, create=False) as store:
        where = store.location
        if args.run_id is not None:
            run = store.get_run(args.run_id)
            if run is None or run.meta.purpose != "per-op":
                raise UsageError(f"run {args.run_id} is not a per-op profile in {where}: see `mobilebench runs`")
        else:
            newest = store.runs(purpose="per-op", status="ok", limit=1)
            if not newest:
                raise UsageError(f"no per-op profile in {where}: run `mobilebench profile NAME --per-op` first")
            (run,) = newest
        ops = store.ops(run.id)
    m = run.meta
    output = args.output or Path("results") / "figures" / f"ops_{m.model}_{m.device_profile}_run{run.id}.png"
    title = f"{m.model} on {m.device_profile}{' (emulated)' if m.emulated else ''}: operators of run {run.id}"
    draw_ops(ops, output, title=title)
    echo_err(f"wrote {output} ({sum(1 for op in ops if op.macs)} of {len(ops)} operators have multiply-adds)")
