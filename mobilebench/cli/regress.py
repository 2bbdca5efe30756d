"""``mobilebench regress``: compare the newest runs with a committed latency baseline.

Exit status: 0 no regression, 1 a regression (or a baseline model missing from the
runs, or a slowdown too poorly sampled to test), 2 bad input (no baseline file, no runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import add_db_option, add_format_option, bounded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline", metavar="PATH", type=Path, required=True, help="baseline CSV, e.g. results/baselines/pixel4.csv"
    )
    parser.add_argument("--device", metavar="PROFILE", help="only this device profile")
    parser.add_argument("--runtime", choices=("executorch", "onnx"), help="only this runtime")
    parser.add_argument("--dtype", choices=("fp32", "int8"), help="only this dtype")
    add_db_option(parser)
    # Defaults as in mobilebench.report.regress (DEFAULT_THRESHOLD, DEFAULT_ALPHA), which
    # also checks the ranges; not imported, so that parsing does not load the store.
    parser.add_argument(
        "--threshold",
        metavar="FRACTION",
        type=bounded(float, above=0, maximum=1),
        default=0.05,
        help="relative slowdown of the median that may count as a regression",
    )
    parser.add_argument(
        "--alpha", metavar="P", type=bounded(float, above=0, maximum=0.5), default=0.01, help="significance level of the one-sided Mann-Whitney U test"
    )
    parser.add_argument(
        "--update-baseline", action="store_true", help="rewrite the baseline from the newest runs (exit 0)"
    )
    add_format_option(parser, ("table", "json", "markdown"), help="markdown: for $GITHUB_STEP_SUMMARY")


def run(args: argparse.Namespace) -> None:
    """Compare the newest runs with a latency baseline; exit 1 on a regression.

    A regression: the median is more than --threshold slower than the baseline's AND the
    slowdown is significant on the per-iteration samples (one-sided Mann-Whitney U at
    --alpha). Improvements are reported too. A baseline model without a new run, or a
    slowdown with too few samples to test, also fails the check.
    """
    from mobilebench.errors import MobilebenchError, UsageError
    from mobilebench.cli.console import emit
    from mobilebench.report.regress import compare, update_baseline
    from mobilebench.store import ResultsStore

    filters = {"device": args.device, "runtime": args.runtime, "dtype": args.dtype}
    report = None
    with ResultsStore(args.db, create=False) as store:
        # --update-baseline creates a missing baseline, and compares first where one exists.
        if not args.update_baseline or args.baseline.is_file():
            try:
                report = compare(store, args.baseline, threshold=args.threshold, alpha=args.alpha, **filters)
            except UsageError:
                if not args.update_baseline:
                    raise
        if args.update_baseline:
            written, kept = update_baseline(store, args.baseline, **filters)
    if report is not None:
        if args.format == "json":
            print(json.dumps(report.as_json(), indent=2))
        elif args.format == "markdown":
            print(report.markdown(), end="")
        else:
            emit(report.COLUMNS, report.rows(), "table", title=f"Latency regression check {report.headline()}")
    if args.update_baseline:
        echo_err(f"wrote baseline {args.baseline}: {written} row(s) from the newest runs, {kept} kept")
        return
    assert report is not None
    if report.exit_code:
        # The report is on stdout (often redirected into a job summary); this line in the
        # log says why the step failed.
        raise MobilebenchError(f"latency regression check {report.headline()}", exit_code=report.exit_code)
