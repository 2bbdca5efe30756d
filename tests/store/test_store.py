"""The results database: round trips, transactions, migrations and killed runs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.bench.stats import summarize
from mobilebench.records import RunMeta, Sample
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.store import MIGRATIONS, SCHEMA_VERSION, ResultsStore

META = RunMeta(
    model="skipnet_m",
    runtime="executorch",
    backend="xnnpack",
    dtype="fp32",
    device_profile="pixel4",
    arch="skipnet_m",
    checkpoint_sha256="ab" * 32,
    input_shape=(1, 3, 224, 224),
    device_model="Pixel 4",
    cpu=7,
    governor="schedutil",
    freq_khz_before=2_841_600,
    temp_c_before=31.5,
    warmup=2,
    iterations=6,
    state_before={"freq_khz": 2_841_600, "temp_c": 31.5},
)
TIMED = [27.0, 26.5, 27.5, 26.8, 27.2, 27.1]


def samples(timed=TIMED, warm=(40.0, 30.0)):
    out = [Sample(i, ms, warmup=True) for i, ms in enumerate(warm)]
    return out + [Sample(len(warm) + k, ms) for k, ms in enumerate(timed)]


def finished_run(store: ResultsStore, meta: RunMeta = META, timed=TIMED) -> int:
    run_id = store.start_run(meta)
    store.complete_run(run_id, meta, summarize(timed, first_ms=40.0, load_ms=90.0), samples(timed))
    return run_id


def test_complete_run_round_trip(tmp_path):
    path = tmp_path / "nested" / "results.sqlite"
    with ResultsStore(path) as store:
        run_id = store.start_run(META)
        running = store.get_run(run_id)
        assert running.status == "running" and running.stats is None
        assert running.pid == os.getpid() and running.host
        after = replace(META, freq_khz_after=2_400_000, temp_c_after=38.0, warnings=["noisy"], extra={"note": "x"})
        store.complete_run(run_id, after, summarize(TIMED, first_ms=40.0, load_ms=90.0), samples())
    with ResultsStore(path) as store:
        record = store.get_run(run_id)
        assert record.status == "ok" and record.finished_at and record.error is None
        assert record.meta == after
        assert record.meta.input_shape == (1, 3, 224, 224)
        assert record.stats == summarize(TIMED, first_ms=40.0, load_ms=90.0)
        assert store.samples(run_id) == samples()
        flat = record.as_dict()
        assert flat["input_shape"] == "1x3x224x224" and flat["median_ms"] == record.stats.median_ms
        assert flat["warnings"] == ["noisy"]


def test_database_is_wal_with_foreign_keys(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        finished_run(store)
    conn = sqlite3.connect(tmp_path / "r.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO samples (run_id, i, latency_ms, warmup) VALUES (999, 0, 1.0, 0)")
    conn.close()


def test_failed_run_and_state_rules(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_id = store.start_run(META)
        store.fail_run(run_id, "device went away:\n  adb connection reset", replace(META, temp_c_after=50.0))
        record = store.get_run(run_id)
        assert record.status == "failed" and record.error == "device went away: adb connection reset"
        assert record.meta.temp_c_after == 50.0 and record.stats is None
        with pytest.raises(MobilebenchError, match="already failed"):
            store.complete_run(run_id, META, summarize(TIMED), samples())
        with pytest.raises(MobilebenchError, match="does not exist"):
            store.fail_run(12345, "x")
        # A bad sample list rolls the whole completion back: the run stays running.
        other = store.start_run(META)
        duplicate = [Sample(0, 1.0), Sample(0, 2.0)]
        with pytest.raises(MobilebenchError, match="unique"):
            store.complete_run(other, META, summarize([1.0, 2.0]), duplicate)
        assert store.get_run(other).status == "running" and store.samples(other) == []
        with pytest.raises(MobilebenchError, match="cover"):
            store.complete_run(other, META, summarize([1.0]), samples())


def test_runs_filters_and_order(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        first = finished_run(store)
        onnx = finished_run(store, replace(META, runtime="onnx", backend="cpu"))
        emulated = finished_run(store, replace(META, device_profile="emulator", emulated=True))
        failed = store.start_run(replace(META, model="mobilenet_v3_large"))
        store.fail_run(failed, "boom")
        assert [r.id for r in store.runs()] == [failed, emulated, onnx, first]
        assert [r.id for r in store.runs(limit=2)] == [failed, emulated]
        assert [r.id for r in store.runs(runtime="onnx")] == [onnx]
        assert [r.id for r in store.runs(device="pixel4", status="ok")] == [onnx, first]
        assert [r.id for r in store.runs(emulated=True)] == [emulated]
        assert [r.id for r in store.runs(model="mobilenet_v3_large")] == [failed]
        with pytest.raises(UsageError):
            store.runs(status="done")


def test_accuracy_newest_wins_and_is_validated(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.accuracy("skipnet_m") is None
        store.record_accuracy(
            model="skipnet_m", checkpoint_sha256=None, dataset="imagenet", top1=75.9, top5=92.5, source="eval run 1"
        )
        newest = store.record_accuracy(
            model="skipnet_m",
            checkpoint_sha256="cd" * 32,
            dataset="imagenet",
            top1=76.1,
            top5=None,
            source="eval run 2",
        )
        record = store.accuracy("skipnet_m")
        assert record.id == newest and record.top1 == 76.1 and record.top5 is None
        assert store.accuracy_models() == ["skipnet_m"]
        with pytest.raises(MobilebenchError, match="percentage"):
            store.record_accuracy(model="m", checkpoint_sha256=None, dataset="d", top1=176.0, top5=None, source="s")


def test_missing_database_is_not_created_for_readers(tmp_path):
    with pytest.raises(UsageError, match="no results database"):
        ResultsStore(tmp_path / "absent.sqlite", create=False)
    assert not (tmp_path / "absent.sqlite").exists()


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(MobilebenchError, match="cannot open results database"):
        ResultsStore(path)


def test_v0_database_is_created_by_migrations(tmp_path):
    path = tmp_path / "v0.sqlite"
    sqlite3.connect(path).close()  # an empty file: user_version 0
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        finished_run(store)


def test_older_version_database_is_upgraded_keeping_its_data(tmp_path):
    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO runs (id, created_at, finished_at, status, model, runtime, backend, dtype, device_profile,"
        " host, pid, n, median_ms, mean_ms, min_ms, max_ms, ci_method)"
        " VALUES (1, '2025-01-01T00:00:00.000000+00:00', '2025-01-01T00:01:00.000000+00:00', 'ok', 'm',"
        " 'executorch', 'xnnpack', 'fp32', 'pixel4', 'h', 1, 2, 5.0, 5.0, 4.0, 6.0, 'x')"
    )
    conn.execute("INSERT INTO samples (run_id, i, latency_ms, warmup) VALUES (1, 0, 4.0, 0), (1, 1, 6.0, 0)")
    conn.commit()
    conn.close()
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [s.averaged_over for s in store.samples(1)] == [1, 1]
        assert store.get_run(1).stats.median_ms == 5.0
        # The new column is writable.
        run_id = store.start_run(META)
        store.complete_run(run_id, META, summarize([12.0]), [Sample(0, 12.0, averaged_over=50)])
        assert store.samples(run_id)[0].averaged_over == 50


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(MobilebenchError, match="newer than this mobilebench"):
        ResultsStore(path)


def test_failed_migration_leaves_the_database_untouched(tmp_path):
    path = tmp_path / "clash.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accuracy (x)")  # someone else's table with our name
    conn.commit()
    conn.close()
    with pytest.raises(MobilebenchError, match="already exists"):
        ResultsStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'runs'").fetchone() is None
    conn.close()


# --- processes killed mid-run -------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mobilebench.bench.stats import summarize
    from mobilebench.records import RunMeta, Sample
    from mobilebench.store import ResultsStore

    db, flag, phase = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    meta = RunMeta(model="m", runtime="executorch", backend="xnnpack", dtype="fp32", device_profile="pixel4")
    store = ResultsStore(db)
    run_id = store.start_run(meta)

    class StallInsideTransaction(list):
        # Blocks while the completing transaction is open, as if SIGKILL came mid-write.
        def __iter__(self):
            for k, sample in enumerate(list.__iter__(self)):
                if k == 3 and store._conn.in_transaction:
                    flag.write_text(str(run_id))
                    time.sleep(120)
                yield sample

    if phase == "running":
        flag.write_text(str(run_id))
        time.sleep(120)
    samples = StallInsideTransaction(Sample(i, 10.0 + i) for i in range(10))
    store.complete_run(run_id, meta, summarize([10.0 + i for i in range(10)]), samples)
    """
)


def start_child(tmp_path: Path, phase: str) -> tuple[subprocess.Popen, Path, int]:
    """A process that starts a run and stalls at ``phase``; returns it, the db and the run id."""
    db, flag = tmp_path / "child.sqlite", tmp_path / "flag"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(flag), phase])
    deadline = time.monotonic() + 60
    while not flag.exists() or not flag.read_text():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail(f"child never reached {phase!r} (exit status {child.returncode})")
        time.sleep(0.05)
    return child, db, int(flag.read_text())


def sigkill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)  # reaped: no zombie left to look alive
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("phase", ["running", "completing"])
def test_sigkilled_run_is_marked_aborted_on_next_open(tmp_path, phase):
    child, db, run_id = start_child(tmp_path, phase)
    sigkill(child)
    with ResultsStore(db) as store:
        record = store.get_run(run_id)
        # Never a row that looks like a result: the half-done completion was rolled back.
        assert record.status == "running" and record.stats is None
        assert store.samples(run_id) == []
        assert store.mark_stale_runs_aborted() == 1
        record = store.get_run(run_id)
        assert record.status == "aborted" and "killed or crashed" in record.error
        assert store.runs(status="ok") == [] and store.samples(run_id) == []
        assert store.mark_stale_runs_aborted() == 0


def test_running_rows_of_live_processes_are_left_alone(tmp_path):
    child, db, run_id = start_child(tmp_path, "running")
    try:
        with ResultsStore(db) as store:
            mine = store.start_run(META)
            assert store.mark_stale_runs_aborted() == 0
            assert store.get_run(run_id).status == "running"
    finally:
        sigkill(child)
    with ResultsStore(db) as store:
        assert store.mark_stale_runs_aborted() == 1
        assert store.get_run(run_id).status == "aborted"
        assert store.get_run(mine).status == "running"  # this process is alive


# --- comparisons, operators, artifact accuracy ---------------------------------------------


def test_comparison_lifecycle_and_its_runs(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        cid = store.start_comparison(
            baseline="mobilenet_v3_large", candidate="skipnet_m", device_profile="pixel4", mode="alternate", threshold=0.02
        )
        running = store.get_comparison(cid)
        assert running.status == "running" and running.verdict is None and running.pid == os.getpid()
        a = finished_run(store, replace(META, model="mobilenet_v3_large", comparison_id=cid))
        b = finished_run(store, replace(META, comparison_id=cid))
        finished_run(store)  # not part of it
        assert sorted(r.id for r in store.runs(comparison_id=cid)) == [a, b]
        assert store.get_run(b).meta.comparison_id == cid
        store.complete_comparison(
            cid, verdict="faster", ratio=0.91, ci_low=0.88, ci_high=0.94, pairs=40, seconds=12.5, extra={"note": 1}
        )
        done = store.get_comparison(cid)
        assert (done.status, done.verdict, done.ratio, done.ci_low, done.ci_high, done.pairs, done.seconds) == (
            "ok", "faster", 0.91, 0.88, 0.94, 40, 12.5
        )
        assert done.finished_at and done.extra == {"note": 1}
        with pytest.raises(MobilebenchError, match="already ok"):
            store.fail_comparison(cid, "late")
        with pytest.raises(MobilebenchError, match="unknown verdict"):
            store.complete_comparison(cid, verdict="better", ratio=1, ci_low=1, ci_high=1, pairs=1, seconds=1)
        other = store.start_comparison(baseline="x", candidate="y", device_profile="emulator", mode="alternate", threshold=0.05)
        store.fail_comparison(other, "device went away:\n reset")
        assert store.get_comparison(other).error == "device went away: reset"
        assert [c.id for c in store.comparisons()] == [other, cid]
        assert [c.id for c in store.comparisons(status="ok")] == [cid]
        assert [c.id for c in store.comparisons(device="emulator")] == [other]
        assert [c.id for c in store.comparisons(limit=1)] == [other]
        with pytest.raises(MobilebenchError, match="does not exist"):
            store.fail_comparison(999, "x")


def test_operators_of_per_op_runs(tmp_path):
    from mobilebench.records import OpRecord

    traced = replace(META, purpose="per-op")
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_id = store.start_run(traced)
        ops = [
            OpRecord(run_id, 1, "aten.add", "add", None, 0.5, None, calls=3),
            OpRecord(run_id, 0, "XnnpackBackend#0", "delegate", "XnnpackBackend", 20.0, 2.1e8),
        ]
        store.complete_run(run_id, traced, summarize(TIMED), samples(), ops=ops)
        assert store.ops(run_id) == sorted(ops, key=lambda op: op.rank)
        assert store.ops(run_id)[0].gmacs == pytest.approx(2.1e8 / 20e6)
        # A latency run has no operators; a duplicate rank rolls everything back.
        latency = finished_run(store)
        with pytest.raises(MobilebenchError, match="per-op runs"):
            store.record_ops(latency, [OpRecord(latency, 0, "x", "x", None, 1.0, None)])
        later = store.start_run(traced)
        store.complete_run(later, traced, summarize(TIMED), samples())
        dup = [OpRecord(later, 0, "a", "a", None, 1.0, None), OpRecord(later, 0, "b", "b", None, 1.0, None)]
        with pytest.raises(MobilebenchError, match="ranks must be unique"):
            store.record_ops(later, dup)
        assert store.ops(later) == []
        with pytest.raises(MobilebenchError, match="belongs to run"):
            store.record_ops(later, [OpRecord(run_id, 0, "a", "a", None, 1.0, None)])
        store.record_ops(later, [OpRecord(later, 0, "a", "a", None, 1.0, None)])
        assert [op.name for op in store.ops(later)] == ["a"]
        with pytest.raises(MobilebenchError, match="does not exist"):
            store.record_ops(12345, [])
        # Failed ops in complete_run leave the run running, with no samples.
        third = store.start_run(traced)
        with pytest.raises(MobilebenchError, match="ranks must be unique"):
            store.complete_run(third, traced, summarize(TIMED), samples(), ops=[replace(op, run_id=third) for op in dup])
        assert store.get_run(third).status == "running" and store.samples(third) == []


def test_artifact_accuracy_lookups(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        eager = store.record_accuracy(
            model="skipnet_m", checkpoint_sha256="cd" * 32, dataset="digits", top1=91.0, top5=99.0, source="eval"
        )
        pte = store.record_accuracy(
            model="skipnet_m",
            checkpoint_sha256="cd" * 32,
            dataset="digits",
            top1=90.5,
            top5=99.0,
            source="eval",
            runtime="executorch",
            dtype="int8",
            artifact_sha256="ef" * 32,
            images=360,
        )
        assert store.accuracy("skipnet_m").id == pte  # the newest of any runtime
        assert store.accuracy("skipnet_m", runtime="eager").id == eager
        record = store.accuracy("skipnet_m", artifact_sha256="ef" * 32)
        assert (record.runtime, record.dtype, record.images, record.top1) == ("executorch", "int8", 360, 90.5)
        assert store.accuracy("skipnet_m", artifact_sha256="00" * 32) is None
        assert [r.id for r in store.accuracy_records(dataset="digits")] == [pte, eager]
        with pytest.raises(MobilebenchError, match="artifact's sha256"):
            store.record_accuracy(model="m", checkpoint_sha256=None, dataset="d", top1=1, top5=None, source="s",
                                  runtime="onnx")
        with pytest.raises(MobilebenchError, match="unknown accuracy runtime"):
            store.record_accuracy(model="m", checkpoint_sha256=None, dataset="d", top1=1, top5=None, source="s",
                                  runtime="tflite")


def test_stale_comparisons_are_aborted_with_their_runs(tmp_path):
    child, db, run_id = start_child(tmp_path, "running")
    with ResultsStore(db) as store:
        cid = store.start_comparison(baseline="a", candidate="b", device_profile="pixel4", mode="alternate", threshold=0.02)
        store._conn.execute("UPDATE comparisons SET pid = ? WHERE id = ?", (child.pid, cid))
    sigkill(child)
    with ResultsStore(db) as store:
        assert store.mark_stale_runs_aborted() == 1
        assert store.get_comparison(cid).status == "aborted"
