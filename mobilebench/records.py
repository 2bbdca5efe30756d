"""The result types every layer shares: a run's samples, statistics and provenance.

A leaf module (it imports nothing of mobilebench but the version and the errors), so
that the store, the benchmark session and the reports agree on one definition of a
result without importing each other. Every number is in milliseconds unless its name
says otherwise; see :mod:`mobilebench.bench.stats` for how the statistics are computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from mobilebench import __version__
from mobilebench.errors import MobilebenchError

#: ``LatencyStats.ci_method`` of a run whose runner printed aggregates only.
CI_METHOD_SUMMARY = "none: runner reported a summary only"


@dataclass(frozen=True)
class Sample:
    """One iteration as the runner reported it.

    ``averaged_over`` is 1 for a real per-iteration measurement. Runners that print only
    a total (old ``executor_runner`` builds) yield one sample that is the mean of
    ``averaged_over`` iterations; such a sample carries no spread information.
    """

    i: int
    latency_ms: float
    warmup: bool = False
    averaged_over: int = 1


@dataclass(frozen=True)
class LatencyStats:
    """Summary of the timed iterations of one run (see :mod:`mobilebench.bench.stats`)."""

    n: int
    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    p10_ms: float | None
    p90_ms: float | None
    std_ms: float | None
    cv: float | None
    mad_ms: float | None
    ci_low_ms: float | None
    ci_high_ms: float | None
    ci_method: str
    load_ms: float | None = None
    first_ms: float | None = None

    @property
    def from_summary(self) -> bool:
        """True when the runner reported only aggregates, not per-iteration samples."""
        return self.ci_method == CI_METHOD_SUMMARY


@dataclass(frozen=True)
class RunMeta:
    """Provenance of one profile run: what ran, where, and under which conditions.

    Field names are the ``runs`` column names. ``input_shape`` is stored as ``1x3x224x224``;
    ``warnings`` as a JSON list; ``state_before``/``state_after``/``extra`` as JSON objects.
    ``checkpoint_sha256=None`` records random initialisation.
    """

    model: str
    runtime: str
    backend: str
    dtype: str
    device_profile: str
    emulated: bool = False
    arch: str | None = None
    checkpoint_sha256: str | None = None
    artifact_sha256: str | None = None
    artifact_path: str | None = None
    input_shape: tuple[int, ...] | None = None
    device_model: str | None = None
    device_board: str | None = None
    android_version: str | None = None
    fingerprint: str | None = None
    device_serial: str | None = None
    cpu: int | None = None
    threads: int = 1
    governor: str | None = None
    freq_khz_before: int | None = None
    freq_khz_after: int | None = None
    max_freq_khz: int | None = None
    temp_c_before: float | None = None
    temp_c_after: float | None = None
    runner_name: str | None = None
    runner_version: str | None = None
    runtime_version: str | None = None
    toolkit_version: str | None = __version__
    warmup: int | None = None
    iterations: int | None = None
    warnings: tuple[str, ...] = ()
    state_before: Mapping[str, Any] | None = None
    state_after: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("model", "runtime", "backend", "dtype", "device_profile"):
            if not getattr(self, name):
                raise MobilebenchError(f"run metadata needs a non-empty {name}")
        if self.threads < 1:
            raise MobilebenchError(f"run metadata: threads must be >= 1, got {self.threads}")
        # Accept any sequence for the tuple fields so callers can pass lists.
        object.__setattr__(self, "warnings", tuple(self.warnings))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))


@dataclass(frozen=True)
class RunRecord:
    """A ``runs`` row: status and bookkeeping, the provenance, and (for ``ok``) the stats."""

    id: int
    created_at: str
    finished_at: str | None
    status: str
    error: str | None
    host: str
    pid: int
    meta: RunMeta
    stats: LatencyStats | None

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready view with the column names (for ``--format json|csv``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
        }
        meta = asdict(self.meta)
        meta["input_shape"] = shape_to_text(self.meta.input_shape)
        meta["warnings"] = list(self.meta.warnings)
        out.update(meta)
        out.update({name: getattr(self.stats, name) if self.stats else None for name in STATS_COLUMNS})
        return out


@dataclass(frozen=True)
class AccuracyRecord:
    """An ``accuracy`` row. ``top1``/``top5`` are percentages (76.2, not 0.762)."""

    id: int
    created_at: str
    model: str
    checkpoint_sha256: str | None
    dataset: str
    top1: float
    top5: float | None
    source: str


#: The ``runs`` columns that hold a :class:`LatencyStats` field, in field order.
STATS_COLUMNS = tuple(f.name for f in fields(LatencyStats))


def shape_to_text(shape: tuple[int, ...] | None) -> str | None:
    return "x".join(str(d) for d in shape) if shape is not None else None
