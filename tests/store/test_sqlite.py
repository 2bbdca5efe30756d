"""SQLite specifics: the file, its WAL, old files upgraded, a locked database."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from mobilebench.bench.stats import summarize
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.records import Sample
from mobilebench.store import SCHEMA_VERSION, ResultsStore, database_url

from .test_store import META, finished_run

#: The schema of mobilebench 0.1.0 (version 1), as it wrote it.
V1_SCHEMA = (
    """
    CREATE TABLE runs (
        id                INTEGER PRIMARY KEY,
        created_at        TEXT NOT NULL,
        finished_at       TEXT,
        status            TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'aborted')),
        error             TEXT,
        model             TEXT NOT NULL,
        arch              TEXT,
        checkpoint_sha256 TEXT,              -- NULL: random initialisation
        artifact_sha256   TEXT,
        artifact_path     TEXT,
        runtime           TEXT NOT NULL,     -- executorch | onnx
        backend           TEXT NOT NULL,     -- xnnpack | cpu
        dtype             TEXT NOT NULL,     -- fp32 | int8
        input_shape       TEXT,              -- e.g. 1x3x224x224
        device_profile    TEXT NOT NULL,
        emulated          INTEGER NOT NULL DEFAULT 0 CHECK (emulated IN (0, 1)),
        device_model      TEXT,
        device_board      TEXT,
        android_version   TEXT,
        fingerprint       TEXT,
        device_serial     TEXT,
        cpu               INTEGER,           -- the core the runner was pinned to
        threads           INTEGER NOT NULL DEFAULT 1,
        governor          TEXT,
        freq_khz_before   INTEGER,
        freq_khz_after    INTEGER,
        max_freq_khz      INTEGER,
        temp_c_before     REAL,
        temp_c_after      REAL,
        runner_name       TEXT,
        runner_version    TEXT,
        runtime_version   TEXT,
        toolkit_version   TEXT,
        host              TEXT NOT NULL,     -- the machine that drove the run
        pid               INTEGER NOT NULL,  -- its process, to detect killed runs
        warmup            INTEGER,
        iterations        INTEGER,           -- requested timed iterations
        n                 INTEGER,           -- timed iterations the statistics cover
        load_ms           REAL,
        first_ms          REAL,              -- the cold first iteration
        median_ms         REAL,
        mean_ms           REAL,
        p10_ms            REAL,
        p90_ms            REAL,
        min_ms            REAL,
        max_ms            REAL,
        std_ms            REAL,
        cv                REAL,              -- std / mean, a fraction
        mad_ms            REAL,
        ci_low_ms         REAL,              -- 95% CI of the median
        ci_high_ms        REAL,
        ci_method         TEXT,
        warnings          TEXT NOT NULL DEFAULT '[]',  -- JSON list of strings
        state_before      TEXT,              -- JSON device state snapshot
        state_after       TEXT,
        extra             TEXT,              -- JSON
        CHECK (status != 'ok' OR (median_ms IS NOT NULL AND finished_at IS NOT NULL))
    )
    """,
    "CREATE INDEX runs_by_status ON runs (status, created_at)",
    """
    CREATE TABLE samples (
        run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        i          INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        warmup     INTEGER NOT NULL CHECK (warmup IN (0, 1)),
        PRIMARY KEY (run_id, i)
    )
    """,
    """
    CREATE TABLE accuracy (
        id                INTEGER PRIMARY KEY,
        created_at        TEXT NOT NULL,
        model             TEXT NOT NULL,
        checkpoint_sha256 TEXT,
        dataset           TEXT NOT NULL,
        top1              REAL NOT NULL,     -- percent
        top5              REAL,              -- percent
        source            TEXT NOT NULL
    )
    """,
    "CREATE INDEX accuracy_by_model ON accuracy (model, created_at)",
)


def v1_file(path: Path) -> Path:
    """A version-1 file with one ok run of two samples, as mobilebench 0.1.0 left it."""
    conn = sqlite3.connect(path)
    for statement in V1_SCHEMA:
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
    return path


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


def test_paths_and_urls_name_the_same_file(tmp_path, monkeypatch):
    path = tmp_path / "nested" / "r.sqlite"
    with ResultsStore(path) as store:
        run_id = finished_run(store)
        assert store.path == path and store.location == str(path)
    for db in (str(path), f"sqlite:///{path}", f"sqlite:///{path}?timeout=5"):
        with ResultsStore(db, create=False) as store:
            assert store.get_run(run_id).status == "ok"
    monkeypatch.setenv("MOBILEBENCH_DB", str(path))
    with ResultsStore(create=False) as store:
        assert store.path == path
    assert ResultsStore(f"sqlite:///{path}?timeout=5").timeout_s == 5.0
    with pytest.raises(UsageError, match="is a directory"):
        ResultsStore(tmp_path)
    for bad, message in (
        ("sqlite://", "name a database file"),
        ("mysql://u@h/db", "unsupported database"),
        ("postgresql+psycopg2://u@h/db", "psycopg 3"),
        ("postgresql://u@h", "name the database"),
        ("postgresql://u@h:port/db", "not a database URL"),
        ("", "empty"),
    ):
        with pytest.raises(UsageError, match=message):
            database_url(bad)


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(MobilebenchError, match=f"results database {path}: file is not a database"):
        ResultsStore(path)


def test_empty_file_gets_the_schema(tmp_path):
    path = tmp_path / "v0.sqlite"
    sqlite3.connect(path).close()  # an empty file: user_version 0
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        finished_run(store)


def test_version_1_file_is_upgraded_keeping_its_data(tmp_path):
    path = v1_file(tmp_path / "v1.sqlite")
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [s.averaged_over for s in store.samples(1)] == [1, 1]
        old = store.get_run(1)
        assert old.stats.median_ms == 5.0 and old.meta.purpose == "latency"
        # The new columns and tables are writable.
        run_id = store.start_run(META)
        store.complete_run(run_id, META, summarize([12.0]), [Sample(0, 12.0, averaged_over=50)])
        assert store.samples(run_id)[0].averaged_over == 50
        assert store.get_run(run_id).meta.peak_rss_bytes == META.peak_rss_bytes
        store.record_accuracy(
            model="m", checkpoint_sha256=None, dataset="d", top1=1.0, top5=None, source="s", runtime="onnx",
            artifact_sha256="ab" * 32,
        )


def _schema(path: Path) -> dict:
    """Every table's columns (name, affinity, nullable, default), keys, indexes and checks."""
    engine = sa.create_engine(f"sqlite:///{path}")
    inspector = sa.inspect(engine)
    conn = engine.connect()
    out = {}
    for table in sorted(inspector.get_table_names()):
        # An INTEGER PRIMARY KEY (the row id) is never NULL, whether it says so or not.
        columns = {
            c["name"]: (
                c["type"].python_type,
                c["nullable"] and not c["primary_key"],
                str(c["default"]).strip("'") if c["default"] else None,
            )
            for c in inspector.get_columns(table)
        }
        out[table] = {
            "columns": columns,
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            # (SQLAlchemy's reflection misses ON DELETE of some inline REFERENCES.)
            "foreign keys": sorted(
                (row["table"], row["from"], row["to"], row["on_delete"])
                for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})").mappings()
            ),
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            "checks": sorted(" ".join(c["sqltext"].split()) for c in inspector.get_check_constraints(table)),
        }
    conn.close()
    engine.dispose()
    return out


def test_an_upgraded_file_has_the_schema_of_a_new_one(tmp_path):
    ResultsStore(tmp_path / "new.sqlite").close()
    ResultsStore(v1_file(tmp_path / "old.sqlite")).close()
    new, old = _schema(tmp_path / "new.sqlite"), _schema(tmp_path / "old.sqlite")
    assert sorted(old) == sorted(new)
    for table in new:
        assert old[table] == new[table], table


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


# --- another writer ----------------------------------------------------------------------


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection in the middle of a write transaction."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO accuracy (created_at, model, dataset, top1, source) VALUES ('t', 'x', 'd', 1, 's')")
    return other


def test_a_writer_waits_for_another_then_says_what_happened(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    other = hold_write_lock(path)
    try:
        with ResultsStore(f"sqlite:///{path}?timeout=0.3") as store:
            # Readers are not blocked by the writer.
            assert store.runs() == [] and store.accuracy("x") is None
            started = time.monotonic()
            with pytest.raises(MobilebenchError) as caught:
                store.start_run(META)
            assert time.monotonic() - started >= 0.3
            message = str(caught.value)
            assert message == (
                f"results database {path} stayed locked by another writer for 0.3 s; "
                "retry when the other mobilebench (or sqlite3) process is done with it"
            )
            # Within the wait, the other writer finishing lets this one through.
            threading.Timer(0.1, other.rollback).start()
            with ResultsStore(f"sqlite:///{path}?timeout=10") as patient:
                run_id = patient.start_run(META)
            assert [r.id for r in store.runs()] == [run_id]
    finally:
        other.close()
