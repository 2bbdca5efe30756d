"""The results database on both engines: round trips, transactions, killed runs.

Every test taking ``results_db`` runs once on SQLite and once on the session's
PostgreSQL server (tests/pg.py). Engine-specific behaviour (SQLite files, migrations of
old files, connection errors) is in test_sqlite.py and test_postgres.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from mobilebench.bench.stats import summarize
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.records import OpRecord, RunMeta, Sample
from mobilebench.store import SCHEMA_VERSION, ResultsStore, comparisons_table, process_alive

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
    peak_rss_bytes=5 * 2**32,  # needs 64 bits
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


@pytest.fixture
def store(results_db: str):
    with ResultsStore(results_db) as s:
        yield s


def test_complete_run_round_trip(results_db):
    with ResultsStore(results_db) as store:
        assert store.schema_version == SCHEMA_VERSION
        run_id = store.start_run(META)
        running = store.get_run(run_id)
        assert running.status == "running" and running.stats is None
        assert running.pid == os.getpid() and running.host
        after = replace(META, freq_khz_after=2_400_000, temp_c_after=38.0, warnings=["noisy"], extra={"note": "x"})
        store.complete_run(run_id, after, summarize(TIMED, first_ms=40.0, load_ms=90.0), samples())
    with ResultsStore(results_db, create=False) as store:
        record = store.get_run(run_id)
        assert record.status == "ok" and record.finished_at and record.error is None
        assert record.meta == after
        assert record.meta.input_shape == (1, 3, 224, 224)
        assert record.stats == summarize(TIMED, first_ms=40.0, load_ms=90.0)
        assert store.samples(run_id) == samples()
        flat = record.as_dict()
        assert flat["input_shape"] == "1x3x224x224" and flat["median_ms"] == record.stats.median_ms
        assert flat["warnings"] == ["noisy"]
        assert store.get_run(run_id + 100) is None


def test_failed_run_and_state_rules(store):
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
    # The store is still usable after a failed transaction.
    store.fail_run(other, "gave up")
    assert store.get_run(other).status == "failed"


def test_ok_needs_statistics_in_the_database_too(store):
    run_id = store.start_run(META)
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE runs SET status = 'ok' WHERE id = :id"), {"id": run_id})


def test_runs_filters_and_order(store):
    first = finished_run(store)
    onnx = finished_run(store, replace(META, runtime="onnx", backend="cpu"))
    emulated = finished_run(store, replace(META, device_profile="emulator", emulated=True))
    failed = store.start_run(replace(META, model="mobilenet_v3_large"))
    store.fail_run(failed, "boom")
    traced = finished_run(store, replace(META, purpose="per-op"))
    assert [r.id for r in store.runs()] == [traced, failed, emulated, onnx, first]
    assert [r.id for r in store.runs(limit=2)] == [traced, failed]
    assert [r.id for r in store.runs(runtime="onnx")] == [onnx]
    assert [r.id for r in store.runs(device="pixel4", status="ok", purpose="latency")] == [onnx, first]
    assert [r.id for r in store.runs(emulated=True)] == [emulated]
    assert [r.id for r in store.runs(emulated=False, purpose="per-op")] == [traced]
    assert [r.id for r in store.runs(model="mobilenet_v3_large")] == [failed]
    with pytest.raises(UsageError):
        store.runs(status="done")
    with pytest.raises(UsageError):
        store.runs(limit=0)


def test_accuracy_newest_wins_and_is_validated(store):
    assert store.accuracy("skipnet_m") is None
    store.record_accuracy(model="skipnet_m", checkpoint_sha256=None, dataset="imagenet", top1=75.9, top5=92.5, source="eval 1")
    newest = store.record_accuracy(
        model="skipnet_m", checkpoint_sha256="cd" * 32, dataset="imagenet", top1=76.1, top5=None, source="eval 2"
    )
    record = store.accuracy("skipnet_m")
    assert record.id == newest and record.top1 == 76.1 and record.top5 is None and record.runtime == "eager"
    assert store.accuracy_models() == ["skipnet_m"]
    with pytest.raises(MobilebenchError, match="percentage"):
        store.record_accuracy(model="m", checkpoint_sha256=None, dataset="d", top1=176.0, top5=None, source="s")


def test_artifact_accuracy_lookups(store):
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
        store.record_accuracy(model="m", checkpoint_sha256=None, dataset="d", top1=1, top5=None, source="s", runtime="onnx")
    with pytest.raises(MobilebenchError, match="unknown accuracy runtime"):
        store.record_accuracy(model="m", checkpoint_sha256=None, dataset="d", top1=1, top5=None, source="s", runtime="tflite")


def test_comparison_lifecycle_and_its_runs(store):
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
    store.complete_comparison(cid, verdict="faster", ratio=0.91, ci_low=0.88, ci_high=0.94, pairs=40, seconds=12.5, extra={"n": 1})
    done = store.get_comparison(cid)
    assert (done.status, done.verdict, done.ratio, done.ci_low, done.ci_high, done.pairs, done.seconds) == (
        "ok",
        "faster",
        0.91,
        0.88,
        0.94,
        40,
        12.5,
    )
    assert done.finished_at and done.extra == {"n": 1}
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
    with pytest.raises(MobilebenchError, match="(?i)foreign key"):  # a run points to a comparison that exists
        store.start_run(replace(META, comparison_id=999))


def test_operators_of_per_op_runs(store):
    traced = replace(META, purpose="per-op")
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
    # Bad operators in complete_run leave the run running, with no samples.
    third = store.start_run(traced)
    with pytest.raises(MobilebenchError, match="ranks must be unique"):
        store.complete_run(third, traced, summarize(TIMED), samples(), ops=[replace(op, run_id=third) for op in dup])
    assert store.get_run(third).status == "running" and store.samples(third) == []


def test_a_hook_that_raises_rolls_the_run_back(results_db):
    class Vetoing(ResultsStore):
        def run_completed(self, conn, run_id):
            raise MobilebenchError("job lease lost")

    with Vetoing(results_db) as store:
        run_id = store.start_run(META)
        with pytest.raises(MobilebenchError, match="lease lost"):
            store.complete_run(run_id, META, summarize(TIMED), samples())
        assert store.get_run(run_id).status == "running" and store.samples(run_id) == []


def test_missing_database_is_not_created_for_readers(results_db):
    with pytest.raises(UsageError, match="no (results database|mobilebench results)"):
        ResultsStore(results_db, create=False)
    with ResultsStore(results_db) as store:  # a writer creates it
        assert store.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(results_db):
    with ResultsStore(results_db) as store:
        with store.transaction() as conn:
            store._write_version(conn, SCHEMA_VERSION + 1)
    with pytest.raises(MobilebenchError, match="newer than this mobilebench"):
        ResultsStore(results_db)


def test_two_processes_creating_one_database_at_once(results_db):
    """Both migrate-or-wait; neither fails, the schema is created once."""
    code = textwrap.dedent(
        """
        import sys
        from mobilebench.records import RunMeta
        from mobilebench.store import ResultsStore
        with ResultsStore(sys.argv[1]) as store:
            store.start_run(RunMeta(model="m", runtime="executorch", backend="xnnpack", dtype="fp32", device_profile="x"))
        """
    )
    children = [subprocess.Popen([sys.executable, "-c", code, results_db], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    with ResultsStore(results_db, create=False) as store:
        assert len(store.runs()) == 3


# --- processes killed mid-run -------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mobilebench.records import LatencyStats, RunMeta, Sample
    from mobilebench.store import ResultsStore

    db, flag, phase = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

    class StallInsideTransaction(ResultsStore):
        # Blocks while the completing transaction is open, as if SIGKILL came mid-write.
        def run_completed(self, conn, run_id):
            flag.write_text(str(run_id))
            time.sleep(120)

    meta = RunMeta(model="m", runtime="executorch", backend="xnnpack", dtype="fp32", device_profile="pixel4")
    store = StallInsideTransaction(db)
    run_id = store.start_run(meta)
    if phase == "running":
        flag.write_text(str(run_id))
        time.sleep(120)
    samples = [Sample(i, 10.0 + i) for i in range(10)]
    stats = LatencyStats(n=10, median_ms=14.5, mean_ms=14.5, min_ms=10.0, max_ms=19.0, p10_ms=None, p90_ms=None,
                         std_ms=None, cv=None, mad_ms=None, ci_low_ms=None, ci_high_ms=None, ci_method="none")
    store.complete_run(run_id, meta, stats, samples)
    """
)


def start_child(tmp_path: Path, db: str, phase: str) -> tuple[subprocess.Popen, int]:
    """A process that starts a run in ``db`` and stalls at ``phase``; returns it and the run id."""
    flag = tmp_path / f"flag-{phase}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, db, str(flag), phase])
    deadline = time.monotonic() + 60
    while not flag.exists() or not flag.read_text():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail(f"child never reached {phase!r} (exit status {child.returncode})")
        time.sleep(0.05)
    return child, int(flag.read_text())


def sigkill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)  # reaped: no zombie left to look alive
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("phase", ["running", "completing"])
def test_sigkilled_run_is_marked_aborted_on_next_open(tmp_path, results_db, phase):
    child, run_id = start_child(tmp_path, results_db, phase)
    assert process_alive(*_host_pid(results_db, run_id)) is True
    sigkill(child)
    with ResultsStore(results_db) as store:
        record = store.get_run(run_id)
        # Never a row that looks like a result: the half-done completion was rolled back.
        assert record.status == "running" and record.stats is None
        assert store.samples(run_id) == []
        assert process_alive(record.host, record.pid) is False
        assert store.mark_stale_runs_aborted() == 1
        record = store.get_run(run_id)
        assert record.status == "aborted" and "killed or crashed" in record.error
        assert store.runs(status="ok") == [] and store.samples(run_id) == []
        assert store.mark_stale_runs_aborted() == 0


def _host_pid(db: str, run_id: int) -> tuple[str, int]:
    with ResultsStore(db) as store:
        record = store.get_run(run_id)
        return record.host, record.pid


def test_running_rows_of_live_processes_are_left_alone(tmp_path, results_db):
    child, run_id = start_child(tmp_path, results_db, "running")
    try:
        with ResultsStore(results_db) as store:
            mine = store.start_run(META)
            assert store.mark_stale_runs_aborted() == 0
            assert store.get_run(run_id).status == "running"
    finally:
        sigkill(child)
    with ResultsStore(results_db) as store:
        assert store.mark_stale_runs_aborted() == 1
        assert store.get_run(run_id).status == "aborted"
        assert store.get_run(mine).status == "running"  # this process is alive
        # Another host's rows are left alone: their process cannot be checked here.
        assert process_alive("some-other-host", os.getpid()) is None


def test_stale_comparisons_are_aborted_with_their_runs(tmp_path, results_db):
    child, run_id = start_child(tmp_path, results_db, "running")
    with ResultsStore(results_db) as store:
        cid = store.start_comparison(baseline="a", candidate="b", device_profile="pixel4", mode="alternate", threshold=0.02)
        with store.transaction() as conn:
            conn.execute(sa.update(comparisons_table).where(comparisons_table.c.id == cid).values(pid=child.pid))
    sigkill(child)
    with ResultsStore(results_db) as store:
        assert store.mark_stale_runs_aborted() == 1
        assert store.get_comparison(cid).status == "aborted"
