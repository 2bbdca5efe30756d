"""The argument parser every command is built on, and the options several commands share.

The CLI is plain :mod:`argparse`. Each command module (``mobilebench/cli/<name>.py``)
provides

* ``add_arguments(parser)``: declares its arguments, with the converters below for
  numbers (:func:`bounded`: finite, within bounds) and the shared options
  (``add_db_option``, ``add_format_option``, ...) declared once here, and
* ``run(args)``: whose docstring is the command's help, which turns the parsed
  arguments into the library's configuration dataclasses and calls the library; it
  may return an exit status (a verdict: ``compare``), None meaning 0.

Command modules import their libraries inside ``run``, so that ``mobilebench runs``
does not import torch (seconds) to list a table.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

DB_HELP = "results database: a file path or a postgresql:// URL (default: $MOBILEBENCH_DB, else results/mobilebench.sqlite)"

DATASET_HELP = (
    "imagefolder: DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg; cifar100: the python archive "
    "or its extracted folder; digits: scikit-learn's 8x8 digits upsampled to 32x32, no --data needed"
)
CALIBRATION_HELP = (
    "int8: calibrate on a dataset's training images (digits, cifar100 or imagefolder with --data), "
    "a folder of images, or N synthetic random inputs (latency only); default: the training data of a "
    "mobilebench training checkpoint, synthetic inputs for a random-initialised model"
)

#: Largest integer any option takes: counts and sizes fit the runner's and the
#: database's 32-bit fields, and a typo of twenty digits is refused at once.
MAX_INT = 2**31 - 1
#: The longest timeout an option takes, seconds.
DAY_S = 86_400.0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions keep their paragraphs (they are docstrings); options show their
    default unless it is "nothing" (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line on stderr
    (``error: mobilebench profile: ...``) and exit status 2, like every other error."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def bounded(
    kind: Callable[[str], int | float],
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> Callable[[str], int | float]:
    """An argparse ``type=`` that parses ``kind`` (int or float) and checks its range:
    ``minimum``/``maximum`` inclusive, ``above`` exclusive. Floats must be finite
    (``nan`` and ``inf`` are refused); integers are at most :data:`MAX_INT`."""
    if kind is int and maximum is None:
        maximum = MAX_INT

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below the minimum {minimum:g}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"{text} must be greater than {above:g}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is above the maximum {maximum:g}")
        return value

    convert.bounded = True  # type: ignore[attr-defined]  # tests check every numeric option uses this
    return convert


def add_format_option(parser: argparse.ArgumentParser, allowed: Sequence[str], *, default: str = "table", help: str = "") -> None:
    """``--format`` restricted to ``allowed`` (case-insensitive, ``md`` = ``markdown``)."""
    parser.add_argument(
        "--format",
        type=_format_name,
        choices=tuple(allowed),
        default=default,
        help=help or "output format",
    )


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH|URL", default=None, help=DB_HELP)


def add_calibration_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibration", metavar="SPEC", help=CALIBRATION_HELP)


def calibrated_exporter(spec: str | None) -> Callable[..., Any]:
    """The exporter a session takes (``export=``): int8 exports calibrated on the model's
    own data, or on ``spec`` (``--calibration``); fp32 exports as they are."""
    import dataclasses

    from mobilebench.export import export_model

    calibrations: dict[Any, Any] = {}

    def export(resolved: Any, options: Any, hooks: Any) -> Any:
        if options.dtype == "int8":
            if resolved not in calibrations:
                from mobilebench.train.calibration import calibration_for

                calibrations[resolved] = calibration_for(resolved, spec)
            options = dataclasses.replace(options, calibration=calibrations[resolved])
        return export_model(resolved, options, hooks=hooks)

    return export


def default_workers() -> int:
    """Loader processes per training process: the machine's cores shared out, at most 8."""
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, (os.cpu_count() or 1) // max(per_node, 1) - 1))


def comma_list(text: str) -> list[str] | None:
    """``--models a,b``: the names in order; None (every one) when there are none."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


def _format_name(text: str) -> str:
    value = text.strip().lower()
    return "markdown" if value == "md" else value


def add_device_options(
    parser: argparse.ArgumentParser, *, several: bool = False, default: str | None = "host", help: str = ""
) -> None:
    """Where to measure: ``--device``, ``--address``, ``--devices-file``, ``--cpu``.

    With ``several``, ``--device`` and ``--address`` may be repeated (``--address`` then
    goes with the ``--device`` in the same position); ``args.device`` is a list. Else
    ``--device`` defaults to ``default``, and ``help`` says what it is for.
    """
    if several:
        parser.add_argument(
            "--device", "-d", metavar="PROFILE", action="append",
            help="device profile (see `mobilebench devices`); repeat to measure on several at once (default: host)",
        )  # fmt: skip
        parser.add_argument(
            "--address", metavar="HOST:PORT", action="append",
            help="HOST:PORT of an ADB-over-TCP device, overriding the profile; one per --device when repeated",
        )  # fmt: skip
    else:
        parser.add_argument(
            "--device", "-d", metavar="PROFILE", default=default, help=help or "device profile (see `mobilebench devices`)"
        )
        parser.add_argument("--address", metavar="HOST:PORT", help="HOST:PORT of an ADB-over-TCP device, overriding the profile")
    parser.add_argument("--devices-file", metavar="PATH", type=Path, help="extra devices.toml, read last (highest priority)")
    parser.add_argument("--cpu", metavar="N", type=bounded(int, minimum=0), help="core to pin to (default: the profile's)")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """What runs the model: ``--runtime``, ``--dtype``."""
    parser.add_argument("--runtime", choices=("executorch", "onnx"), default="executorch", help="what runs the model")
    parser.add_argument("--dtype", choices=("fp32", "int8"), default="fp32", help="int8: executorch only")


def add_iteration_options(parser: argparse.ArgumentParser) -> None:
    """How long a run measures: ``--warmup``, ``--iterations``, ``--target-rel-ci``, ``--max-iterations``."""
    parser.add_argument("--warmup", metavar="N", type=bounded(int, minimum=0), default=10, help="untimed warm-up iterations")
    parser.add_argument(
        "--iterations", metavar="N", type=bounded(int, minimum=1), default=50, help="timed iterations (the minimum with --target-rel-ci)"
    )
    parser.add_argument(
        "--target-rel-ci",
        metavar="FRACTION",
        type=bounded(float, above=0, maximum=0.5),
        help="iterate until the 95%% CI of the median is within +-this fraction of it",
    )
    parser.add_argument("--max-iterations", metavar="N", type=bounded(int, minimum=1), help="upper bound with --target-rel-ci")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Which weights and resolution: ``--checkpoint``, ``--input-size``."""
    parser.add_argument("--checkpoint", metavar="PATH", type=Path, help="checkpoint for a single model")
    parser.add_argument("--input-size", metavar="PIXELS", type=bounded(int, minimum=1), help="input resolution (default: the card's)")


def add_run_condition_options(parser: argparse.ArgumentParser) -> None:
    """How a runner invocation is guarded: cool-down and timeouts."""
    parser.add_argument(
        "--cooldown-c",
        metavar="C",
        type=bounded(float, minimum=-50, maximum=150),
        help="wait until the pinned core is below this temperature (C)",
    )
    parser.add_argument(
        "--cooldown-timeout",
        metavar="S",
        type=bounded(float, minimum=0, maximum=DAY_S),
        default=300.0,
        help="give up cooling down after this many seconds",
    )
    parser.add_argument(
        "--runner-timeout",
        metavar="S",
        type=bounded(float, above=0, maximum=DAY_S),
        default=600.0,
        help="seconds one runner invocation may take",
    )


def measurement_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~mobilebench.bench.measurement.Measurement` keyword arguments of the
    options above (the iteration options too, where the command has them)."""
    values = dict(
        runtime=args.runtime,
        dtype=args.dtype,
        cpu=args.cpu,
        cooldown_c=args.cooldown_c,
        cooldown_timeout_s=args.cooldown_timeout,
        runner_timeout_s=args.runner_timeout,
    )
    if hasattr(args, "iterations"):  # add_iteration_options
        values.update(
            warmup=args.warmup, iterations=args.iterations, target_rel_ci=args.target_rel_ci, max_iterations=args.max_iterations
        )
    return values


def profile_config(args: argparse.Namespace, **overrides: Any) -> Any:
    """The :class:`~mobilebench.bench.session.ProfileConfig` of the options above."""
    from mobilebench.bench.session import ProfileConfig

    values = dict(measurement_options(args), device=args.device, address=args.address, devices_file=args.devices_file)
    values.update(overrides)
    return ProfileConfig(**values)
