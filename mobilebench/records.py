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

#: What a run is for (see :class:`RunMeta`).
RUN_PURPOSES = ("latency", "per-op")

#: What computed an accuracy's predictions (see :class:`AccuracyRecord`).
ACCURACY_RUNTIMES = ("eager", "executorch", "onnx", "quoted")

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
    #: In an interleaved comparison, the index of the pair (A, B) this iteration belongs
    #: to; the pair's other half is the sample with the same ``pair`` in the other run.
    pair: int | None = None


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
    load_ms: float | None = None  # the first load of the program in the process
    first_ms: float | None = None
    warm_load_ms: float | None = None  # a second load in the same process

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

    ``purpose`` is ``latency`` for a measurement, ``per-op`` for a traced run (event
    tracing costs time: such runs never feed Table 2, regressions or comparisons).
    ``comparison_id`` links the two sides of an interleaved comparison. ``runner_build``
    says which build of the runner ran (``host``, ``android-arm64-v8a`` for the NDK
    build, ``linux-arm64`` for the bundle, or the stock tool's name) for ``abi`` (the
    device's, e.g. ``arm64-v8a``, ``x86_64``). Memory is in bytes: the runner's peak
    resident set and the program's planned (arena) memory.
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
    runner_build: str | None = None
    abi: str | None = None
    toolkit_version: str | None = __version__
    purpose: str = "latency"
    comparison_id: int | None = None
    peak_rss_bytes: int | None = None
    planned_memory_bytes: int | None = None
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
        if self.purpose not in RUN_PURPOSES:
            raise MobilebenchError(f"run metadata: purpose must be one of {', '.join(RUN_PURPOSES)}, got {self.purpose!r}")
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
    job_id: int | None = None  # the lab job it was measured for (mobilebench.lab)

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
            "job_id": self.job_id,
        }
        meta = asdict(self.meta)
        meta["input_shape"] = shape_to_text(self.meta.input_shape)
        meta["warnings"] = list(self.meta.warnings)
        out.update(meta)
        out.update({name: getattr(self.stats, name) if self.stats else None for name in STATS_COLUMNS})
        return out


@dataclass(frozen=True)
class AccuracyRecord:
    """An ``accuracy`` row. ``top1``/``top5`` are percentages (76.2, not 0.762).

    ``runtime`` is what computed the predictions: ``eager`` (PyTorch), ``executorch``
    or ``onnx`` (the exported artifact ``artifact_sha256`` in its runtime), or ``quoted``
    for a number copied from a paper. ``images`` is how many were evaluated.
    """

    id: int
    created_at: str
    model: str
    checkpoint_sha256: str | None
    dataset: str
    top1: float
    top5: float | None
    source: str
    runtime: str = "eager"
    dtype: str | None = None
    artifact_sha256: str | None = None
    images: int | None = None


@dataclass(frozen=True)
class OpRecord:
    """One operator (or delegate call) of a traced (``per-op``) run.

    ``ms`` is the median over the traced iterations; ``macs`` the multiply-adds fvcore
    attributes to it (None when nothing maps to it); ``calls`` how many events of this
    operator one iteration has.
    """

    run_id: int
    rank: int  # 0 = the slowest
    name: str
    kind: str
    delegate: str | None
    ms: float
    macs: float | None
    calls: int = 1

    @property
    def gmacs(self) -> float | None:
        """Achieved rate in 10^9 multiply-adds per second."""
        return self.macs / (self.ms * 1e6) if self.macs and self.ms > 0 else None


@dataclass(frozen=True)
class ComparisonRecord:
    """A ``comparisons`` row: an interleaved A/B measurement and its verdict.

    ``ratio`` is CANDIDATE / BASELINE latency with its 95 % interval ``ci_low``..``ci_high``;
    ``verdict`` one of :data:`VERDICTS`; ``pairs`` how many (A, B) pairs it rests on.
    """

    id: int
    created_at: str
    finished_at: str | None
    status: str  # running | ok | failed | aborted
    baseline: str
    candidate: str
    device_profile: str
    mode: str
    threshold: float
    verdict: str | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    pairs: int | None
    seconds: float | None
    error: str | None
    host: str  # the machine that drove it
    pid: int  # its process
    extra: Mapping[str, Any] | None = None


#: A comparison's answers (Chromium Pinpoint's three plus the direction).
VERDICTS = ("same", "slower", "faster", "unknown")


#: The ``runs`` columns that hold a :class:`LatencyStats` field, in field order.
STATS_COLUMNS = tuple(f.name for f in fields(LatencyStats))


def shape_to_text(shape: tuple[int, ...] | None) -> str | None:
    return "x".join(str(d) for d in shape) if shape is not None else None
