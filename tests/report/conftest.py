"""Databases with known runs, built through the real store API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from mobilebench.bench.stats import summarize, summary_stats
from mobilebench.records import RunMeta, Sample
from mobilebench.store import ResultsStore


def _add_run(
    store: ResultsStore,
    model: str,
    device: str = "pixel4",
    timed_ms: Sequence[float] = (10.0,) * 12,
    *,
    status: str = "ok",
    emulated: bool = False,
    runtime: str = "executorch",
    dtype: str = "fp32",
    summary_only: bool = False,
    artifact_sha256: str | None = None,
    peak_rss_bytes: int | None = None,
) -> int:
    """Insert one run; ``ok`` runs get ``timed_ms`` as samples (after one warm-up)."""
    meta = RunMeta(
        model=model,
        runtime=runtime,
        backend="xnnpack" if runtime == "executorch" else "cpu",
        dtype=dtype,
        device_profile=device,
        emulated=emulated,
        warmup=1,
        iterations=len(timed_ms),
        runner_name="mobilebench_runner",
        artifact_sha256=artifact_sha256,
        peak_rss_bytes=peak_rss_bytes,
    )
    run_id = store.start_run(meta)
    if status == "ok":
        if summary_only:
            xs = sorted(timed_ms)
            stats = summary_stats(
                n=len(xs), median_ms=xs[len(xs) // 2], mean_ms=sum(xs) / len(xs), min_ms=xs[0], max_ms=xs[-1]
            )
            store.complete_run(run_id, meta, stats, [])
        else:
            samples = [Sample(0, timed_ms[0] * 3, warmup=True)] + [Sample(i + 1, ms) for i, ms in enumerate(timed_ms)]
            store.complete_run(run_id, meta, summarize(timed_ms, first_ms=timed_ms[0] * 3), samples)
    elif status == "failed":
        store.fail_run(run_id, "runner crashed")
    return run_id


@pytest.fixture
def add_run() -> Callable[..., int]:
    """``add_run(store, model, device, timed_ms, *, status, emulated, runtime, dtype, summary_only)``."""
    return _add_run


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "results.sqlite"


@pytest.fixture
def store(db_path: Path):
    with ResultsStore(db_path) as s:
        yield s
