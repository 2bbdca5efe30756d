"""``mobilebench regress``: compare the newest runs with a committed latency baseline.

Exit status: 0 no regression, 1 a regression, 3 undecided (too few runs, or a between-
run spread too wide for the threshold, or a baseline model with no new runs), 2 bad
input (no baseline file, no runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mobilebench.cli.console import echo_err, emit
from mobilebench.cli.parsing import add_db_option, add_format_option, bounded
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.report.regress import (
    DEFAULT_ALPHA,
    DEFAULT_RUNS,
    DEFAULT_THRESHOLD,
    MIN_RUNS,
    compare,
    update_baseline,
)
from mobilebench.store import ResultsStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline", metavar="PATH", type=Path, required=True, help="baseline CSV, e.g. results/baselines/pixel4.csv"
    )
    parser.add_argument("--device", metavar="PROFILE", help="only this device profile")
    parser.add_argument("--runtime", choices=("executorch", "onnx"), help="only this runtime")
    parser.add_argument("--dtype", choices=("fp32", "int8"), help="only this dtype")
    add_db_option(parser)
    parser.add_argument(
        "--threshold",
        metavar="FRACTION",
        type=bounded(float, above=0, maximum=0.99),
        default=DEFAULT_THRESHOLD,
        help="relative change of the latency that counts (0.05: 5 percent)",
    )
    parser.add_argument(
        "--alpha",
        metavar="P",
        type=bounded(float, above=0, maximum=0.5),
        default=DEFAULT_ALPHA,
        help="chance of any false verdict in the whole check (split over the models checked)",
    )
    parser.add_argument(
        "--runs",
        metavar="N",
        type=bounded(int, minimum=MIN_RUNS),
        default=DEFAULT_RUNS,
        help="newest runs per model taken on each side (those since the baseline; the baseline's with --update-baseline)",
    )
    parser.add_argument(
        "--update-baseline", action="store_true", help="rewrite the baseline from the newest runs (exit 0)"
    )
    add_format_option(parser, ("table", "json", "markdown"), help="markdown: for $GITHUB_STEP_SUMMARY")


def run(args: argparse.Namespace) -> None:
    """Compare the newest runs with a latency baseline: exit 1 slower, 3 undecided.

    The run is the replicate: the medians of the newest --runs runs since the baseline
    against the baseline's runs, Welch's t interval on their logs. Slower: the interval
    above 1 and the ratio above 1 + --threshold; same: the interval inside 1 +- --threshold;
    otherwise unknown, e.g. with fewer than 3 runs a side (profile with --repeat 3).
    """
    filters = {"device": args.device, "runtime": args.runtime, "dtype": args.dtype}
    report = update = None
    with ResultsStore(args.db, create=False) as store:
        # --update-baseline creates a missing baseline, and compares first where one exists.
        if not args.update_baseline or args.baseline.is_file():
            try:
                report = compare(
                    store, args.baseline, threshold=args.threshold, alpha=args.alpha, runs=args.runs, **filters
                )
            except UsageError:
                if not args.update_baseline:
                    raise
        if args.update_baseline:
            update = update_baseline(store, args.baseline, runs=args.runs, **filters)
    if report is not None:
        if args.format == "json":
            print(json.dumps(report.as_json(), indent=2))
        elif args.format == "markdown":
            print(report.markdown(), end="")
        else:
            emit(report.COLUMNS, report.rows(), "table", title=f"Latency regression check {report.headline()}")
    if update is not None:
        echo_err(
            f"wrote baseline {args.baseline}: {update.runs} run(s) of {update.keys} model(s) "
            f"(the newest {args.runs} each), {update.kept_keys} model(s) kept"
        )
        if update.short:
            names = ", ".join(sorted({k.model for k in update.short}))
            echo_err(
                f"warning: fewer than {MIN_RUNS} runs of {names}: regress says unknown for them until the "
                f"baseline holds {MIN_RUNS} (profile --repeat {MIN_RUNS}, then --update-baseline)"
            )
        return
    assert report is not None
    if report.exit_code:
        # The report is on stdout (often redirected into a job summary); this line in the
        # log says why the step failed.
        raise MobilebenchError(f"latency regression check {report.headline()}", exit_code=report.exit_code)
