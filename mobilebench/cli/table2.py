"""``mobilebench table2``: the paper's Table 2 (top-1 and latency per phone) from the results."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import add_db_option, add_format_option, comma_list
from mobilebench.report.formats import ALL_FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices",
        metavar="PROFILE,...",
        type=comma_list,
        help="device profiles in column order (default: every device with runs)",
    )
    parser.add_argument(
        "--models", metavar="NAME,...", type=comma_list, help="models in row order (default: every model with runs)"
    )
    parser.add_argument("--runtime", choices=("executorch", "onnx"), default="executorch", help="runtime of the runs")
    parser.add_argument("--dtype", choices=("fp32", "int8"), default="fp32", help="dtype of the runs")
    parser.add_argument(
        "--columns",
        metavar="METRIC,...",
        type=comma_list,
        help="per device, these numbers of its run (default: median_ms; also e.g. peak_rss_bytes, load_ms, "
        "warm_load_ms, p90_ms, cv)",
    )
    add_db_option(parser)
    parser.add_argument(
        "--output",
        metavar="PATH",
        type=Path,
        help="also write the table here (.csv, .md or .json) with PATH.provenance.json beside it",
    )
    add_format_option(parser, ALL_FORMATS)


def run(args: argparse.Namespace) -> None:
    """Top-1 accuracy and the median latency of the newest successful run per model and device.

    Emulated runs get their own "(ms, emulated)" columns and never fill a phone's column;
    missing measurements stay empty.
    """
    from mobilebench.cli.console import emit
    from mobilebench.report.table2 import build_table2, write_table2
    from mobilebench.store import ResultsStore

    with ResultsStore(args.db, create=False) as store:
        table = build_table2(
            store,
            devices=args.devices,
            models=args.models,
            runtime=args.runtime,
            dtype=args.dtype,
            metrics=args.columns or ("median_ms",),
        )
        if args.output is not None:
            sidecar = write_table2(table, args.output, database=store.location)
    emit(
        table.headers,
        table.records(),
        args.format,
        title=f"Table 2: top-1 vs latency ({args.runtime}, {args.dtype}, median of newest run)",
    )
    if args.output is not None:
        echo_err(f"wrote {args.output} and {sidecar}")
