"""What one measurement is: the options every profile, comparison and lab job shares
(:class:`Measurement`) and the request a runner receives (:class:`RunnerRequest`).

Kept apart from the runners and the session, which the lab's queue, validating and
storing a job's options, has no use for.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mobilebench.errors import UsageError
from mobilebench.export.options import Dtype, Runtime


@dataclass(frozen=True)
class RunnerRequest:
    """What to run.

    ``iterations`` timed runs after ``warmup`` untimed ones. With ``target_rel_ci`` the
    runner keeps going after ``iterations`` until the 95 % CI of the median is within
    ``±target_rel_ci`` of it (see :func:`mobilebench.bench.stats.ci_is_tight`), up to
    ``max_iterations`` (runner default when None). ``input_shape`` is needed only for
    models with dynamic input dimensions. ``etdump``: where the runner writes an
    ExecuTorch event trace of every execution, warm-up included (a traced run, for
    :mod:`mobilebench.bench.per_op`; its latencies include the tracing). ``input_file``:
    the input, raw little-endian float32, instead of the runner's generated one;
    ``dump_output``: where the runner writes output 0 of its last run, raw float32 (for
    :mod:`mobilebench.bench.agreement`).
    """

    model_path: str
    warmup: int
    iterations: int
    threads: int = 1
    target_rel_ci: float | None = None
    max_iterations: int | None = None
    input_shape: tuple[int, ...] | None = None
    etdump: str | None = None
    input_file: str | None = None
    dump_output: str | None = None

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise UsageError(f"warm-up iterations must be >= 0, got {self.warmup}")
        if self.iterations < 1:
            raise UsageError(f"iterations must be >= 1, got {self.iterations}")
        if self.threads < 1:
            raise UsageError(f"threads must be >= 1, got {self.threads}")
        if self.target_rel_ci is not None and not 0 < self.target_rel_ci < 1:
            raise UsageError(f"target relative CI must be between 0 and 1, got {self.target_rel_ci}")
        if self.max_iterations is not None and self.max_iterations < self.iterations:
            raise UsageError(f"max iterations ({self.max_iterations}) must be >= iterations ({self.iterations})")


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """How one model is measured, wherever it runs: the options a profile and a lab job
    share. Times are seconds, temperatures degrees C.

    ``iterations`` timed iterations follow ``warmup`` untimed ones; with
    ``target_rel_ci`` the runner continues until the 95 % confidence interval of the
    median is within ±target_rel_ci of it, up to ``max_iterations``. ``cpu`` overrides
    the profile's pinned core. ``cooldown_c`` waits until the pinned core's thermal zone
    reads below it, failing after ``cooldown_timeout_s``. ``runner_timeout_s`` bounds
    one runner invocation.
    """

    runtime: Runtime = "executorch"
    dtype: Dtype = "fp32"
    warmup: int = 10
    iterations: int = 50
    target_rel_ci: float | None = None
    max_iterations: int | None = None
    cpu: int | None = None
    cooldown_c: float | None = None
    cooldown_timeout_s: float = 300.0
    runner_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.runtime not in ("executorch", "onnx"):
            raise UsageError(f"unknown runtime {self.runtime!r}; use executorch or onnx")
        if self.dtype not in ("fp32", "int8"):
            raise UsageError(f"unknown dtype {self.dtype!r}; use fp32 or int8")
        if self.runtime == "onnx" and self.dtype != "fp32":
            raise UsageError("int8 is available for the executorch runtime only")
        if self.cpu is not None and self.cpu < 0:
            raise UsageError(f"--cpu must be >= 0, got {self.cpu}")
        if self.cooldown_timeout_s <= 0 or self.runner_timeout_s <= 0:
            raise UsageError("timeouts must be positive")
        if self.max_iterations is not None and self.target_rel_ci is None:
            raise UsageError("--max-iterations only applies with --target-rel-ci")
        # Validates warm-up/iterations/CI target the same way the runners will.
        self.request("model")

    def measurement(self) -> dict[str, Any]:
        """Just the :class:`Measurement` fields, as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(Measurement)}

    def request(self, model_path: str) -> RunnerRequest:
        return RunnerRequest(
            model_path=model_path,
            warmup=self.warmup,
            iterations=self.iterations,
            threads=1,
            target_rel_ci=self.target_rel_ci,
            max_iterations=self.max_iterations,
        )
