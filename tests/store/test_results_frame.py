"""runs_frame: the store as pandas DataFrames, on both engines; the newest run per key."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from mobilebench.errors import UsageError
from mobilebench.results import SAMPLE_RUN_COLUMNS, runs_frame
from mobilebench.schema import runs_table
from mobilebench.store import ResultsStore

from .test_store import META, TIMED, finished_run, samples


@pytest.fixture
def filled(results_db):
    """Two ok runs of skipnet_m on pixel4 (the second newer), one emulated, one onnx, one failed."""
    with ResultsStore(results_db) as store:
        ids = {
            "old": finished_run(store, timed=[30.0] * 6),
            "new": finished_run(store, replace(META, warnings=["noisy"], extra={"k": 1})),
            "emulated": finished_run(store, replace(META, device_profile="pixel4", emulated=True)),
            "onnx": finished_run(store, replace(META, runtime="onnx", backend="cpu")),
            "traced": finished_run(store, replace(META, purpose="per-op")),
        }
        ids["failed"] = store.start_run(META)
        store.fail_run(ids["failed"], "runner crashed")
    return results_db, ids


def test_one_row_per_run_with_every_column_typed(filled):
    db, ids = filled
    frame = runs_frame(db)
    assert list(frame["id"]) == [ids[k] for k in ("failed", "traced", "onnx", "emulated", "new", "old")]
    assert list(frame.columns) == list(runs_table.c.keys())
    assert isinstance(frame["created_at"].dtype, pd.DatetimeTZDtype) and str(frame["created_at"].dt.tz) == "UTC"
    assert frame["created_at"].is_monotonic_decreasing
    new = frame.set_index("id").loc[ids["new"]]
    assert new["median_ms"] == pytest.approx(27.05) and new["n"] == len(TIMED)
    assert new["warnings"] == ["noisy"] and new["extra"] == {"k": 1}
    assert new["state_before"] == {"freq_khz": 2_841_600, "temp_c": 31.5}
    assert not new["emulated"]
    failed = frame.set_index("id").loc[ids["failed"]]
    assert failed["status"] == "failed" and pd.isna(failed["median_ms"]) and failed["error"] == "runner crashed"
    assert frame["emulated"].dtype == bool


def test_filters_are_the_stores(filled):
    db, ids = filled
    assert list(runs_frame(db, runtime="onnx")["id"]) == [ids["onnx"]]
    assert list(runs_frame(db, status="ok", emulated=True)["id"]) == [ids["emulated"]]
    assert list(runs_frame(db, limit=2)["id"]) == [ids["failed"], ids["traced"]]
    with pytest.raises(UsageError, match="unknown run status"):
        runs_frame(db, status="done")
    empty = runs_frame(db, model="nothing")
    assert empty.empty and list(empty.columns) == list(runs_table.c.keys())


def test_newest_ok_latency_run_per_key(filled):
    db, ids = filled
    with ResultsStore(db, create=False) as store:
        newest = store.runs(status="ok", purpose="latency", newest_per_key=True)
    # The older pixel4 run is superseded; the emulated and onnx runs are keys of their own.
    assert [r.id for r in newest] == [ids["onnx"], ids["emulated"], ids["new"]]
    frame = runs_frame(db, status="ok", purpose="latency", newest_per_key=True)
    assert list(frame["id"]) == [r.id for r in newest]
    table = frame[~frame.emulated].pivot_table(index="model", columns="runtime", values="median_ms")
    assert table.loc["skipnet_m", "executorch"] == pytest.approx(27.05)


def test_samples_in_long_format(filled):
    db, ids = filled
    long = runs_frame(db, samples=True, model="skipnet_m", runtime="executorch", emulated=False, purpose="latency")
    assert list(long.columns) == ["run_id", "i", "latency_ms", "warmup", "averaged_over", "pair", *SAMPLE_RUN_COLUMNS]
    # Newest run first, then iteration order; the failed run has no samples.
    assert list(long.drop_duplicates("run_id")["run_id"]) == [ids["new"], ids["old"]]
    new = long[long.run_id == ids["new"]]
    assert list(new["i"]) == list(range(len(samples())))
    assert list(new["latency_ms"]) == [s.latency_ms for s in samples()]
    assert long["warmup"].dtype == bool and list(new["warmup"]) == [s.warmup for s in samples()]
    timed = long[~long.warmup].groupby("run_id")["latency_ms"].median()
    assert timed[ids["new"]] == pytest.approx(27.05) and timed[ids["old"]] == 30.0
    assert set(long["model"]) == {"skipnet_m"} and long["emulated"].dtype == bool


def test_no_database_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no results database"):
        runs_frame(tmp_path / "absent.sqlite")
    assert not (tmp_path / "absent.sqlite").exists()
