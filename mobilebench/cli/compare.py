"""``mobilebench compare``: is CANDIDATE slower than BASELINE, measured interleaved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mobilebench.cli.parsing import (
    add_calibration_option,
    add_db_option,
    add_device_options,
    add_format_option,
    add_run_condition_options,
    add_runtime_options,
    bounded,
    calibrated_exporter,
    profile_config,
)

COLUMNS = (
    "baseline", "candidate", "device", "mode", "baseline ms", "candidate ms", "ratio", "interval",
    "threshold", "pairs", "seconds", "verdict",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", metavar="BASELINE", help="model card, registry name, checkpoint, .pte or .onnx")
    parser.add_argument("candidate", metavar="CANDIDATE", help="the same kinds of NAME")
    add_device_options(parser)
    add_runtime_options(parser)
    parser.add_argument("--candidate-runtime", choices=("executorch", "onnx"), help="the candidate's (default: --runtime)")
    parser.add_argument("--candidate-dtype", choices=("fp32", "int8"), help="the candidate's (default: --dtype)")
    parser.add_argument(
        "--threshold",
        metavar="FRACTION",
        type=bounded(float, above=0, maximum=0.5),
        default=0.02,
        help="the relative difference that matters: same means within +-threshold",
    )
    parser.add_argument(
        "--max-seconds", metavar="S", type=bounded(float, above=0, maximum=86_400), default=60.0,
        help="stop measuring (verdict unknown) when the next look would not fit",
    )  # fmt: skip
    parser.add_argument(
        "--mode",
        choices=("interleaved", "alternating"),
        help="interleaved: both programs in one runner process, ABBA pairs (default for two .pte); "
        "alternating: whole runs A B B A",
    )
    parser.add_argument(
        "--pairs", metavar="N", type=bounded(int, minimum=6),
        help="timed pairs per runner invocation (alternating: timed iterations per run; default: the plan's)",
    )  # fmt: skip
    parser.add_argument(
        "--batches", metavar="N", type=bounded(int, minimum=1), help="runner invocations per look (default: the plan's)"
    )
    parser.add_argument(
        "--looks", metavar="N", type=bounded(int, minimum=1, maximum=20), help="looks at most (default: the plan's)"
    )
    parser.add_argument("--warmup", metavar="N", type=bounded(int, minimum=0), help="warm-up pairs per invocation")
    add_run_condition_options(parser)
    add_calibration_option(parser)
    parser.add_argument("--checkpoint", metavar="PATH", type=Path, help="checkpoint for both (else each NAME's own)")
    parser.add_argument(
        "--allow-input-mismatch", action="store_true", help="compare models whose input shapes differ"
    )
    add_db_option(parser)
    add_format_option(parser, ("table", "json", "markdown"), help="markdown: for $GITHUB_STEP_SUMMARY")


def run(args: argparse.Namespace) -> int:
    """Measure BASELINE and CANDIDATE interleaved on one device and say whether CANDIDATE
    is the same, slower or faster (CANDIDATE / BASELINE ratio with a confidence interval
    from paired data); on unknown it measures more, up to --max-seconds.

    Exit status: 0 same or faster, 1 slower, 3 unknown, 2 usage errors.
    """
    from mobilebench.bench.compare import CompareConfig, CompareSession
    from mobilebench.bench.hooks import ProgressHooks
    from mobilebench.cli.console import echo_err, emit
    from mobilebench.cli.progress import session_progress
    from mobilebench.store import ResultsStore
    from mobilebench.zoo.resolve import resolve_model

    plan = {"warmup": args.warmup, "pairs_per_batch": args.pairs, "batches_per_look": args.batches, "max_looks": args.looks}
    config = CompareConfig(
        profile=profile_config(args),
        threshold=args.threshold,
        max_seconds=args.max_seconds,
        mode=args.mode,
        candidate_runtime=args.candidate_runtime,
        candidate_dtype=args.candidate_dtype,
        allow_input_mismatch=args.allow_input_mismatch,
        **{key: value for key, value in plan.items() if value is not None},
    )
    models = [resolve_model(name, checkpoint=args.checkpoint) for name in (args.baseline, args.candidate)]
    with ResultsStore(args.db) as store:
        hooks = session_progress() if args.format == "table" else ProgressHooks()
        session = CompareSession(config, store, hooks=hooks, export=calibrated_exporter(args.calibration))
        with hooks:
            outcome = session.run(*models)
    result = as_dict(outcome)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        emit(COLUMNS, [_row(result)], args.format, title=f"comparison {result['comparison_id']}: {result['verdict']}")
        echo_err(f"note: {result['method']}")
    return outcome.exit_code


def as_dict(outcome: Any) -> dict[str, Any]:
    """The JSON of a comparison (``verdict``, ``ratio``, ``ci_low``, ``ci_high``, ``pairs``,
    ``seconds``, both medians, ...)."""
    record, estimate = outcome.record, outcome.decision.estimate
    return {
        "comparison_id": record.id,
        "verdict": record.verdict,
        "ratio": record.ratio,
        "ci_low": record.ci_low,
        "ci_high": record.ci_high,
        "confidence": estimate.confidence,
        "threshold": record.threshold,
        "pairs": record.pairs,
        "seconds": record.seconds,
        "baseline": record.baseline,
        "candidate": record.candidate,
        "baseline_median_ms": estimate.baseline_median_ms,
        "candidate_median_ms": estimate.candidate_median_ms,
        "device": record.device_profile,
        "mode": record.mode,
        "looks": outcome.decision.look,
        "method": estimate.method,
        "runs": outcome.run_ids,
    }


def _row(result: dict[str, Any]) -> dict[str, Any]:
    low, high = result["ci_low"], result["ci_high"]
    return {
        "baseline": result["baseline"],
        "candidate": result["candidate"],
        "device": result["device"],
        "mode": result["mode"],
        "baseline ms": f"{result['baseline_median_ms']:.3f}",
        "candidate ms": f"{result['candidate_median_ms']:.3f}",
        "ratio": f"{result['ratio']:.4f}",
        "interval": f"{low:.4f}-{high:.4f} ({result['confidence']:.2%})" if low is not None else None,
        "threshold": f"+-{result['threshold']:.1%}",
        "pairs": result["pairs"],
        "seconds": f"{result['seconds']:.1f}",
        "verdict": result["verdict"],
    }
