"""The results database: every profile run with its provenance, samples and accuracy.

One SQLite file (default ``results/mobilebench.sqlite``, ``MOBILEBENCH_DB`` overrides),
opened in WAL mode with foreign keys on, so readers (``table2``, ``regress``) never block
a profile in progress. The schema is versioned with ``PRAGMA user_version`` and upgraded
on open by an ordered list of migrations (:data:`MIGRATIONS`); a database written by a
newer mobilebench is refused rather than guessed at.

Tables (flat, readable with any SQLite client or ``pandas.read_sql``):

- ``runs``: one row per profile run. A run is inserted as ``running`` before the runner
  starts (:meth:`ResultsStore.start_run`) and turned into ``ok`` together with its samples
  in one transaction (:meth:`ResultsStore.complete_run`), so a process killed half-way
  leaves a ``running`` row and never a row that looks like a result. The next profile
  marks such rows ``aborted`` (:meth:`ResultsStore.mark_stale_runs_aborted`).
- ``samples``: per-iteration latencies of a run (``warmup`` flags warm-up iterations;
  ``averaged_over`` > 1 marks a value that is the mean of several iterations).
- ``accuracy``: measured or quoted top-1/top-5 (percent) of a model and checkpoint, in
  eager PyTorch or of an exported artifact in its runtime (``runtime``, ``artifact_sha256``).
- ``comparisons``: interleaved A/B measurements and their verdicts, with the same
  ``running`` -> ``ok``/``failed``/``aborted`` life cycle as runs; both sides' runs point
  to theirs (``runs.comparison_id``).
- ``ops``: the operators of a traced (``per-op``) run, slowest first.

Timestamps are UTC ISO 8601 with microseconds, so they sort as text.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.paths import default_db_path
from mobilebench.records import (
    ACCURACY_RUNTIMES,
    STATS_COLUMNS,
    VERDICTS,
    AccuracyRecord,
    ComparisonRecord,
    LatencyStats,
    OpRecord,
    RunMeta,
    RunRecord,
    Sample,
    shape_to_text,
)

RUN_STATUSES = ("running", "ok", "failed", "aborted")

#: Ordered schema migrations; migration ``k`` (1-based) takes ``user_version`` k-1 -> k.
#: Never edit a released migration: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the initial schema.
    (
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
    ),
    # 2: old executor_runner builds print only a total, stored as one averaged sample;
    #    and the reports' "newest run per model and device" lookup gets an index.
    (
        "ALTER TABLE samples ADD COLUMN averaged_over INTEGER NOT NULL DEFAULT 1 CHECK (averaged_over >= 1)",
        "CREATE INDEX runs_by_key ON runs (model, device_profile, runtime, dtype, status, created_at)",
    ),
    # 3: which runner build ran for which ABI; memory and warm load; traced (per-op)
    #    runs kept apart from latency runs; interleaved comparisons with paired samples;
    #    the accuracy of an exported artifact in its runtime; per-operator rows.
    (
        """
        CREATE TABLE comparisons (
            id             INTEGER PRIMARY KEY,
            created_at     TEXT NOT NULL,
            finished_at    TEXT,
            status         TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'aborted')),
            baseline       TEXT NOT NULL,
            candidate      TEXT NOT NULL,
            device_profile TEXT NOT NULL,
            mode           TEXT NOT NULL,
            threshold      REAL NOT NULL,
            verdict        TEXT CHECK (verdict IN ('same', 'slower', 'faster', 'unknown')),
            ratio          REAL,              -- candidate / baseline
            ci_low         REAL,              -- 95% CI of the ratio
            ci_high        REAL,
            pairs          INTEGER,
            seconds        REAL,
            error          TEXT,
            host           TEXT NOT NULL,     -- the machine that drove it
            pid            INTEGER NOT NULL,  -- its process, to detect killed comparisons
            extra          TEXT               -- JSON
        )
        """,
        "ALTER TABLE runs ADD COLUMN runner_build TEXT",
        "ALTER TABLE runs ADD COLUMN abi TEXT",
        "ALTER TABLE runs ADD COLUMN purpose TEXT NOT NULL DEFAULT 'latency' CHECK (purpose IN ('latency', 'per-op'))",
        "ALTER TABLE runs ADD COLUMN comparison_id INTEGER REFERENCES comparisons (id)",
        "ALTER TABLE runs ADD COLUMN peak_rss_bytes INTEGER",
        "ALTER TABLE runs ADD COLUMN planned_memory_bytes INTEGER",
        "ALTER TABLE runs ADD COLUMN warm_load_ms REAL",
        "ALTER TABLE samples ADD COLUMN pair INTEGER",
        "CREATE INDEX runs_by_comparison ON runs (comparison_id)",
        """
        CREATE TABLE ops (
            run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            rank     INTEGER NOT NULL,        -- 0 = the slowest
            name     TEXT NOT NULL,
            kind     TEXT NOT NULL,
            delegate TEXT,
            ms       REAL NOT NULL,           -- median over the traced iterations
            macs     REAL,                    -- fvcore's multiply-adds
            calls    INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (run_id, rank)
        )
        """,
        "ALTER TABLE accuracy ADD COLUMN runtime TEXT NOT NULL DEFAULT 'eager'"
        " CHECK (runtime IN ('eager', 'executorch', 'onnx', 'quoted'))",
        "ALTER TABLE accuracy ADD COLUMN dtype TEXT",
        "ALTER TABLE accuracy ADD COLUMN artifact_sha256 TEXT",
        "ALTER TABLE accuracy ADD COLUMN images INTEGER",
        "CREATE INDEX accuracy_by_artifact ON accuracy (artifact_sha256)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


_META_FIELDS = tuple(f.name for f in fields(RunMeta))
_JSON_FIELDS = ("state_before", "state_after", "extra")


def _json(value: Any) -> str | None:
    # default=str: device snapshots may hold paths or enums; keep them readable.
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _meta_to_columns(meta: RunMeta) -> dict[str, Any]:
    cols = {name: getattr(meta, name) for name in _META_FIELDS}
    cols["emulated"] = int(meta.emulated)
    cols["input_shape"] = shape_to_text(meta.input_shape)
    cols["warnings"] = json.dumps(list(meta.warnings))
    for name in _JSON_FIELDS:
        cols[name] = _json(getattr(meta, name))
    return cols


def _row_to_meta(row: sqlite3.Row) -> RunMeta:
    values = {name: row[name] for name in _META_FIELDS}
    values["emulated"] = bool(row["emulated"])
    shape = row["input_shape"]
    values["input_shape"] = tuple(int(d) for d in shape.split("x")) if shape else None
    values["warnings"] = tuple(json.loads(row["warnings"] or "[]"))
    for name in _JSON_FIELDS:
        values[name] = json.loads(row[name]) if row[name] else None
    return RunMeta(**values)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        # Field 3 of /proc/<pid>/stat is the state; "Z" is a killed, unreaped process.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class ResultsStore:
    """The results database. Use as a context manager (``with ResultsStore() as store:``).

    ``path`` defaults to :func:`mobilebench.paths.default_db_path`. With ``create=False``
    a missing file is a :class:`~mobilebench.errors.UsageError` instead of a new database
    (the report commands use this, so a mistyped ``--db`` does not create an empty one).
    """

    def __init__(self, path: Path | str | None = None, *, create: bool = True, timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if not self.path.exists():
            if not create:
                raise UsageError(f"no results database at {self.path}: run `mobilebench profile` first or pass --db")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_dir():
            raise UsageError(f"results database path {self.path} is a directory")
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every write is an
        # explicit transaction and nothing is committed by accident.
        self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable against a crashed or killed process in WAL mode (only an
            # OS crash can lose the last commits), and much faster than FULL.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise MobilebenchError(f"cannot open results database {self.path}: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
        # instead of failing half-way with "database is locked".
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        if self.schema_version == SCHEMA_VERSION:
            return
        with self._transaction() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MobilebenchError(
                    f"results database {self.path} has schema version {version}, newer than this "
                    f"mobilebench understands ({SCHEMA_VERSION}); upgrade mobilebench"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                # user_version lives in the file header and is rolled back with the rest.
                conn.execute(f"PRAGMA user_version = {number}")

    # -- runs ----------------------------------------------------------------------------

    def start_run(self, meta: RunMeta) -> int:
        """Insert a ``running`` row for this process and commit it; returns the run id."""
        cols = _meta_to_columns(meta)
        cols.update(created_at=utc_now(), status="running", host=socket.gethostname(), pid=os.getpid())
        names = ", ".join(cols)
        marks = ", ".join(f":{name}" for name in cols)
        with self._transaction() as conn:
            cursor = conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", cols)
        return int(cursor.lastrowid)

    def complete_run(
        self,
        run_id: int,
        meta: RunMeta,
        stats: LatencyStats,
        samples: Sequence[Sample],
        *,
        ops: Sequence[OpRecord] = (),
    ) -> None:
        """Record a finished run: metadata, statistics, samples (and the operators of a
        ``per-op`` run) in ONE transaction."""
        timed = [s for s in samples if not s.warmup]
        if samples and not stats.from_summary and len(timed) != stats.n:
            raise MobilebenchError(
                f"run {run_id}: statistics cover {stats.n} iterations but {len(timed)} timed samples were given"
            )
        cols = _meta_to_columns(meta)
        cols.update({name: getattr(stats, name) for name in STATS_COLUMNS})
        cols.update(status="ok", finished_at=utc_now(), error=None)
        with self._transaction() as conn:
            self._finish_running(conn, run_id, cols)
            try:
                conn.executemany(
                    "INSERT INTO samples (run_id, i, latency_ms, warmup, averaged_over, pair) VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, s.i, float(s.latency_ms), int(s.warmup), s.averaged_over, s.pair) for s in samples],
                )
            except sqlite3.IntegrityError as exc:
                raise MobilebenchError(
                    f"run {run_id}: invalid samples ({exc}); iteration indices must be unique"
                ) from exc
            self._insert_ops(conn, run_id, ops)

    def fail_run(self, run_id: int, error: str, meta: RunMeta | None = None) -> None:
        """Mark a ``running`` run ``failed`` with a one-line reason (and final metadata)."""
        cols = _meta_to_columns(meta) if meta is not None else {}
        cols.update(status="failed", finished_at=utc_now(), error=" ".join(str(error).split()))
        with self._transaction() as conn:
            self._finish_running(conn, run_id, cols)

    def _finish_running(self, conn: sqlite3.Connection, run_id: int, cols: dict[str, Any]) -> None:
        """Update a ``running`` row with ``cols``; any other status means it already ended."""
        assignments = ", ".join(f"{name} = :{name}" for name in cols)
        cursor = conn.execute(
            f"UPDATE runs SET {assignments} WHERE id = :run_id AND status = 'running'", {**cols, "run_id": run_id}
        )
        if cursor.rowcount != 1:
            raise self._not_running(run_id)

    def _not_running(self, run_id: int) -> MobilebenchError:
        row = self._conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return MobilebenchError(f"run {run_id} does not exist in {self.path}")
        return MobilebenchError(f"run {run_id} is already {row['status']}; only a running run can be finished")

    def mark_stale_runs_aborted(self) -> int:
        """Mark ``running`` runs and comparisons of dead processes on this host ``aborted``.

        Returns how many runs it marked. Rows started on another host are left alone:
        their process cannot be checked here.
        """
        host = socket.gethostname()
        marked = 0
        for table, what in (("comparisons", "comparison"), ("runs", "run")):
            rows = self._conn.execute(
                f"SELECT id, pid FROM {table} WHERE status = 'running' AND host = ?", (host,)
            ).fetchall()
            stale = [(row["id"], row["pid"]) for row in rows if row["pid"] != os.getpid() and not _pid_alive(row["pid"])]
            if not stale:
                continue
            now = utc_now()
            with self._transaction() as conn:
                for row_id, pid in stale:
                    conn.execute(
                        f"UPDATE {table} SET status = 'aborted', finished_at = ?, error = ?"
                        " WHERE id = ? AND status = 'running'",
                        (now, f"process {pid} on {host} ended before the {what} finished (killed or crashed)", row_id),
                    )
            if table == "runs":
                marked = len(stale)
        return marked

    def runs(
        self,
        *,
        model: str | None = None,
        device: str | None = None,
        runtime: str | None = None,
        dtype: str | None = None,
        status: str | None = None,
        emulated: bool | None = None,
        purpose: str | None = None,
        comparison_id: int | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs matching every given filter, newest first. ``device`` is the profile name."""
        if status is not None and status not in RUN_STATUSES:
            raise UsageError(f"unknown run status {status!r}; expected one of {', '.join(RUN_STATUSES)}")
        if limit is not None and limit < 1:
            raise UsageError(f"limit must be >= 1, got {limit}")
        where, params = [], []
        for column, value in (
            ("model", model),
            ("device_profile", device),
            ("runtime", runtime),
            ("dtype", dtype),
            ("status", status),
            ("purpose", purpose),
            ("comparison_id", comparison_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if emulated is not None:
            where.append("emulated = ?")
            params.append(int(emulated))
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._record(row) for row in self._conn.execute(sql, params)]

    def get_run(self, run_id: int) -> RunRecord | None:
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._record(row) if row else None

    def _record(self, row: sqlite3.Row) -> RunRecord:
        stats = None
        if row["status"] == "ok":
            stats = LatencyStats(**{name: row[name] for name in STATS_COLUMNS})
        return RunRecord(
            id=row["id"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            status=row["status"],
            error=row["error"],
            host=row["host"],
            pid=row["pid"],
            meta=_row_to_meta(row),
            stats=stats,
        )

    def samples(self, run_id: int) -> list[Sample]:
        """All samples of a run in iteration order (warm-up included, flagged)."""
        rows = self._conn.execute(
            "SELECT i, latency_ms, warmup, averaged_over, pair FROM samples WHERE run_id = ? ORDER BY i", (run_id,)
        )
        return [
            Sample(
                i=r["i"],
                latency_ms=r["latency_ms"],
                warmup=bool(r["warmup"]),
                averaged_over=r["averaged_over"],
                pair=r["pair"],
            )
            for r in rows
        ]

    # -- operators of per-op runs -----------------------------------------------------------

    def record_ops(self, run_id: int, ops: Sequence[OpRecord]) -> None:
        """Store the operators of a finished ``per-op`` run (all or none).

        :meth:`complete_run` takes them too (``ops=``), in the run's own transaction;
        this is for operators computed after the run was stored.
        """
        with self._transaction() as conn:
            run = conn.execute("SELECT purpose FROM runs WHERE id = ?", (run_id,)).fetchone()
            if run is None:
                raise MobilebenchError(f"run {run_id} does not exist in {self.path}")
            self._insert_ops(conn, run_id, ops)

    def _insert_ops(self, conn: sqlite3.Connection, run_id: int, ops: Sequence[OpRecord]) -> None:
        if not ops:
            return
        purpose = conn.execute("SELECT purpose FROM runs WHERE id = ?", (run_id,)).fetchone()["purpose"]
        if purpose != "per-op":
            raise MobilebenchError(f"run {run_id} is a {purpose} run; operators belong to per-op runs")
        for op in ops:
            if op.run_id != run_id:
                raise MobilebenchError(f"operator {op.name!r} belongs to run {op.run_id}, not run {run_id}")
        try:
            conn.executemany(
                "INSERT INTO ops (run_id, rank, name, kind, delegate, ms, macs, calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, op.rank, op.name, op.kind, op.delegate, float(op.ms), op.macs, op.calls) for op in ops],
            )
        except sqlite3.IntegrityError as exc:
            raise MobilebenchError(f"run {run_id}: invalid operators ({exc}); ranks must be unique") from exc

    def ops(self, run_id: int) -> list[OpRecord]:
        """The operators of a ``per-op`` run, slowest first (rank 0)."""
        rows = self._conn.execute(
            "SELECT run_id, rank, name, kind, delegate, ms, macs, calls FROM ops WHERE run_id = ? ORDER BY rank",
            (run_id,),
        )
        return [OpRecord(**dict(r)) for r in rows]

    # -- comparisons -----------------------------------------------------------------------

    def start_comparison(
        self,
        *,
        baseline: str,
        candidate: str,
        device_profile: str,
        mode: str,
        threshold: float,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Insert a ``running`` comparison for this process and commit it; returns its id.

        The runs of both sides point to it (``RunMeta.comparison_id``).
        """
        if not baseline or not candidate or not device_profile or not mode:
            raise MobilebenchError("a comparison needs a baseline, a candidate, a device and a mode")
        cols = dict(
            created_at=utc_now(),
            status="running",
            baseline=baseline,
            candidate=candidate,
            device_profile=device_profile,
            mode=mode,
            threshold=float(threshold),
            host=socket.gethostname(),
            pid=os.getpid(),
            extra=_json(extra),
        )
        names = ", ".join(cols)
        marks = ", ".join(f":{name}" for name in cols)
        with self._transaction() as conn:
            cursor = conn.execute(f"INSERT INTO comparisons ({names}) VALUES ({marks})", cols)
        return int(cursor.lastrowid)

    def complete_comparison(
        self,
        comparison_id: int,
        *,
        verdict: str,
        ratio: float | None,
        ci_low: float | None,
        ci_high: float | None,
        pairs: int,
        seconds: float,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Record a comparison's verdict: ``ratio`` = candidate / baseline latency with its
        95 % interval, on ``pairs`` (A, B) pairs measured in ``seconds``."""
        if verdict not in VERDICTS:
            raise MobilebenchError(f"unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}")
        cols: dict[str, Any] = dict(
            status="ok",
            finished_at=utc_now(),
            verdict=verdict,
            ratio=ratio,
            ci_low=ci_low,
            ci_high=ci_high,
            pairs=int(pairs),
            seconds=float(seconds),
            error=None,
        )
        if extra is not None:
            cols["extra"] = _json(extra)
        with self._transaction() as conn:
            self._finish_running_comparison(conn, comparison_id, cols)

    def fail_comparison(self, comparison_id: int, error: str) -> None:
        """Mark a ``running`` comparison ``failed`` with a one-line reason."""
        cols = dict(status="failed", finished_at=utc_now(), error=" ".join(str(error).split()))
        with self._transaction() as conn:
            self._finish_running_comparison(conn, comparison_id, cols)

    def _finish_running_comparison(self, conn: sqlite3.Connection, comparison_id: int, cols: dict[str, Any]) -> None:
        assignments = ", ".join(f"{name} = :{name}" for name in cols)
        cursor = conn.execute(
            f"UPDATE comparisons SET {assignments} WHERE id = :id AND status = 'running'", {**cols, "id": comparison_id}
        )
        if cursor.rowcount != 1:
            row = conn.execute("SELECT status FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
            if row is None:
                raise MobilebenchError(f"comparison {comparison_id} does not exist in {self.path}")
            raise MobilebenchError(
                f"comparison {comparison_id} is already {row['status']}; only a running comparison can be finished"
            )

    def comparisons(
        self,
        *,
        baseline: str | None = None,
        candidate: str | None = None,
        device: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[ComparisonRecord]:
        """Comparisons matching every given filter, newest first."""
        if status is not None and status not in RUN_STATUSES:
            raise UsageError(f"unknown comparison status {status!r}; expected one of {', '.join(RUN_STATUSES)}")
        if limit is not None and limit < 1:
            raise UsageError(f"limit must be >= 1, got {limit}")
        where, params = [], []
        for column, value in (("baseline", baseline), ("candidate", candidate), ("device_profile", device), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM comparisons"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_comparison(row) for row in self._conn.execute(sql, params)]

    def get_comparison(self, comparison_id: int) -> ComparisonRecord | None:
        row = self._conn.execute("SELECT * FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
        return _comparison(row) if row else None

    # -- accuracy ------------------------------------------------------------------------

    def record_accuracy(
        self,
        *,
        model: str,
        checkpoint_sha256: str | None,
        dataset: str,
        top1: float,
        top5: float | None,
        source: str,
        runtime: str = "eager",
        dtype: str | None = None,
        artifact_sha256: str | None = None,
        images: int | None = None,
    ) -> int:
        """Store a top-1/top-5 measurement (percent, 0-100); returns its id.

        ``runtime`` says what computed the predictions (:data:`~mobilebench.records.ACCURACY_RUNTIMES`):
        an ``executorch`` or ``onnx`` accuracy is that of the exported artifact
        ``artifact_sha256`` (required for them) in its ``dtype``; ``images`` how many
        images were evaluated.
        """
        if not model or not dataset or not source:
            raise MobilebenchError("accuracy record needs a model, a dataset and a source")
        if runtime not in ACCURACY_RUNTIMES:
            raise MobilebenchError(f"unknown accuracy runtime {runtime!r}; expected one of {', '.join(ACCURACY_RUNTIMES)}")
        if runtime in ("executorch", "onnx") and not artifact_sha256:
            raise MobilebenchError(f"an accuracy measured in {runtime} needs the artifact's sha256")
        for name, value in (("top1", top1), ("top5", top5)):
            if value is not None and not 0.0 <= float(value) <= 100.0:
                raise MobilebenchError(f"{name} accuracy must be a percentage in [0, 100], got {value}")
        if top5 is not None and top5 < top1:
            raise MobilebenchError(f"top5 accuracy ({top5}) cannot be below top1 ({top1})")
        if images is not None and images < 1:
            raise MobilebenchError(f"accuracy over {images} images: need at least one")
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO accuracy (created_at, model, checkpoint_sha256, dataset, top1, top5, source,"
                " runtime, dtype, artifact_sha256, images) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (utc_now(), model, checkpoint_sha256, dataset, float(top1), top5, source, runtime, dtype,
                 artifact_sha256, images),
            )
        return int(cursor.lastrowid)

    def accuracy_records(
        self,
        model: str | None = None,
        *,
        runtime: str | None = None,
        dtype: str | None = None,
        artifact_sha256: str | None = None,
        checkpoint_sha256: str | None = None,
        dataset: str | None = None,
        limit: int | None = None,
    ) -> list[AccuracyRecord]:
        """Accuracy records matching every given filter, newest first."""
        if runtime is not None and runtime not in ACCURACY_RUNTIMES:
            raise UsageError(f"unknown accuracy runtime {runtime!r}; expected one of {', '.join(ACCURACY_RUNTIMES)}")
        where, params = [], []
        for column, value in (
            ("model", model),
            ("runtime", runtime),
            ("dtype", dtype),
            ("artifact_sha256", artifact_sha256),
            ("checkpoint_sha256", checkpoint_sha256),
            ("dataset", dataset),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM accuracy"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [AccuracyRecord(**dict(row)) for row in self._conn.execute(sql, params)]

    def accuracy(self, model: str, **filters: Any) -> AccuracyRecord | None:
        """The newest accuracy record of a model matching ``filters`` (those of
        :meth:`accuracy_records`: runtime, dtype, artifact_sha256, ...), or None."""
        found = self.accuracy_records(model, limit=1, **filters)
        return found[0] if found else None

    def accuracy_models(self) -> list[str]:
        """Models with at least one accuracy record, sorted."""
        return [r[0] for r in self._conn.execute("SELECT DISTINCT model FROM accuracy ORDER BY model")]


def _comparison(row: sqlite3.Row) -> ComparisonRecord:
    values = {name: row[name] for name in (f.name for f in fields(ComparisonRecord))}
    values["extra"] = json.loads(row["extra"]) if row["extra"] else None
    return ComparisonRecord(**values)
