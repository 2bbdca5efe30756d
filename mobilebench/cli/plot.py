"""``mobilebench plot``: accuracy vs latency, FLOPs or parameters, with the Pareto front."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import add_db_option, comma_list
from mobilebench.report.plot import X_METRICS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--x", type=str.lower, choices=X_METRICS, default="latency", help="horizontal axis")
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
