"""The results database: every profile run with its provenance, samples and accuracy.

One store over two engines, written with SQLAlchemy Core:

- a SQLite file, the default (``results/mobilebench.sqlite``; ``--db PATH`` or
  ``MOBILEBENCH_DB`` choose another), opened in WAL mode with foreign keys on, so readers
  (``table2``, ``regress``) never block a profile in progress. A write transaction takes
  the write lock when it begins (``BEGIN IMMEDIATE``) and waits up to ``timeout_s`` for
  another writer; ``sqlite:///PATH?timeout=S`` sets that wait in the URL.
- a PostgreSQL database for a lab (``--db postgresql://USER@HOST/DB``, driven by psycopg 3;
  passwords from the URL, ``PGPASSWORD`` or ``~/.pgpass``), where several hosts and the
  lab's job queue (:mod:`mobilebench.lab`) share one set of results.

The schema is the tables of :mod:`mobilebench.schema`. A new database is created from
them; an older one is upgraded on open by :data:`~mobilebench.schema.UPGRADES`, in one
transaction; a database written by a newer mobilebench is refused rather than guessed
at. SQLite keeps the version in ``PRAGMA user_version``, PostgreSQL in the one-row table
``mobilebench_schema``.

Tables (flat, readable with any SQL client; :mod:`mobilebench.results` gives DataFrames):

- ``runs``: one row per profile run. A run is inserted as ``running`` before the runner
  starts (:meth:`ResultsStore.start_run`) and turned into ``ok`` together with its samples
  in one transaction (:meth:`ResultsStore.complete_run`), so a process killed half-way
  leaves a ``running`` row and never a row that looks like a result. The next profile on
  that host marks such rows ``aborted`` (:meth:`ResultsStore.mark_stale_runs_aborted`).
- ``samples``: per-iteration latencies of a run (``warmup`` flags warm-up iterations;
  ``averaged_over`` > 1 marks a value that is the mean of several iterations).
- ``accuracy``: measured or quoted top-1/top-5 (percent) of a model and checkpoint, in
  eager PyTorch or of an exported artifact in its runtime (``runtime``, ``artifact_sha256``).
- ``comparisons``: interleaved A/B measurements and their verdicts, with the same
  ``running`` -> ``ok``/``failed``/``aborted`` life cycle as runs; both sides' runs point
  to theirs (``runs.comparison_id``).
- ``ops``: the operators of a traced (``per-op``) run, slowest first.
- ``jobs`` and ``phone_leases``: the lab's job queue (see :mod:`mobilebench.lab.queue`).

Timestamps are UTC ISO 8601 text with microseconds, so they sort as text on both engines;
lease deadlines are seconds since the epoch by the database's clock.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.paths import default_db
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
from mobilebench.schema import (
    RUN_STATUSES,
    SCHEMA_VERSION,
    UPGRADES,
    accuracy_table,
    comparisons_table,
    metadata,
    ops_table,
    pg_version_table,
    runs_table,
    samples_table,
)

def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# --- which database ---------------------------------------------------------------------------


def database_url(db: str | Path | None = None) -> sa.URL:
    """The SQLAlchemy URL of ``db``: a file path (SQLite), a ``sqlite:///PATH`` or a
    ``postgresql://`` URL; None means ``MOBILEBENCH_DB``, else ``results/mobilebench.sqlite``."""
    text = str(db) if db is not None else default_db()
    if not text:
        raise UsageError("the results database is an empty string; give a file path or a postgresql:// URL")
    if "://" not in text:
        return sa.URL.create("sqlite", database=text)
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UsageError(f"{text!r} is not a database URL; give a file path or postgresql://USER@HOST[:PORT]/DB") from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise UsageError(f"{_hide_password(url)}: name a database file, e.g. sqlite:///results/mobilebench.sqlite")
        return url
    if url.get_backend_name() == "postgresql":
        if url.drivername not in ("postgresql", "postgresql+psycopg"):
            raise UsageError(f"{_hide_password(url)}: mobilebench talks to PostgreSQL through psycopg 3; use postgresql://")
        if not url.database:
            raise UsageError(f"{_hide_password(url)}: name the database, e.g. postgresql://USER@HOST/mobilebench")
        return url.set(drivername="postgresql+psycopg")
    raise UsageError(
        f"unsupported database {_hide_password(url)}: use a SQLite file path or a postgresql:// URL"
    )


def database_exists(db: str | Path | None = None) -> bool:
    """Whether ``db`` names an existing SQLite file; True for a server URL (the server
    says at connection time whether the database exists)."""
    url = database_url(db)
    return url.get_backend_name() != "sqlite" or Path(url.database).exists()


def _hide_password(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def database_time(conn: sa.Connection) -> float:
    """Now, in seconds since the epoch, by the database's clock: the one clock every
    host sharing a database agrees on (leases of the lab queue are measured in it)."""
    if conn.dialect.name == "sqlite":
        sql = "SELECT (julianday('now') - 2440587.5) * 86400.0"  # julianday 2440587.5 = 1970-01-01
    else:
        sql = "SELECT extract(epoch FROM clock_timestamp())"
    return float(conn.exec_driver_sql(sql).scalar_one())


def process_alive(host: str, pid: int) -> bool | None:
    """Whether process ``pid`` of ``host`` still runs; None when ``host`` is another
    machine (its processes cannot be checked from here). For ``running`` rows: False
    means the run was killed and will be marked ``aborted`` by the next profile here."""
    if host != socket.gethostname():
        return None
    return pid == os.getpid() or _pid_alive(pid)


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


# --- rows <-> records -------------------------------------------------------------------------

_META_FIELDS = tuple(f.name for f in fields(RunMeta))
_JSON_FIELDS = ("state_before", "state_after", "extra")
_COMPARISON_FIELDS = tuple(f.name for f in fields(ComparisonRecord))
_ACCURACY_FIELDS = tuple(f.name for f in fields(AccuracyRecord))
_OP_FIELDS = tuple(f.name for f in fields(OpRecord))


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


def _row_to_meta(row: sa.RowMapping) -> RunMeta:
    values = {name: row[name] for name in _META_FIELDS}
    values["emulated"] = bool(row["emulated"])
    shape = row["input_shape"]
    values["input_shape"] = tuple(int(d) for d in shape.split("x")) if shape else None
    values["warnings"] = tuple(json.loads(row["warnings"] or "[]"))
    for name in _JSON_FIELDS:
        values[name] = json.loads(row[name]) if row[name] else None
    return RunMeta(**values)


def _run_record(row: sa.RowMapping) -> RunRecord:
    stats = LatencyStats(**{name: row[name] for name in STATS_COLUMNS}) if row["status"] == "ok" else None
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
        job_id=row["job_id"],
    )


def _comparison_record(row: sa.RowMapping) -> ComparisonRecord:
    values = {name: row[name] for name in _COMPARISON_FIELDS}
    values["extra"] = json.loads(row["extra"]) if row["extra"] else None
    return ComparisonRecord(**values)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _matching(table: sa.Table, filters: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
    """``column = value`` for every filter that is not None."""
    return [table.c[name] == value for name, value in filters.items() if value is not None]


def _check_choice(value: str | None, choices: Sequence[str], what: str) -> None:
    """A filter's value: None (any) or one of ``choices``."""
    if value is not None and value not in choices:
        raise UsageError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be >= 1, got {limit}")


#: What identifies "the same measurement" for reports: a newer run of the same key
#: supersedes an older one. Emulated runs have keys of their own.
RUN_KEY = ("model", "device_profile", "runtime", "dtype", "emulated")


def runs_query(
    *,
    model: str | None = None,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
    status: str | None = None,
    emulated: bool | None = None,
    purpose: str | None = None,
    comparison_id: int | None = None,
    in_comparison: bool | None = None,
    newest_per_key: bool = False,
    limit: int | None = None,
) -> sa.Select:
    """The ``runs`` rows matching every given filter, newest first. ``device`` is the
    device profile's name; ``in_comparison`` False keeps the runs that are not one side of
    a comparison. With ``newest_per_key`` only the newest matching run of each
    :data:`RUN_KEY` is kept (a window query), e.g. Table 2's ``status="ok",
    purpose="latency", newest_per_key=True``; ``limit`` applies after that."""
    _check_choice(status, RUN_STATUSES, "run status")
    _check_limit(limit)
    where = _matching(
        runs_table,
        {
            "model": model,
            "device_profile": device,
            "runtime": runtime,
            "dtype": dtype,
            "status": status,
            "purpose": purpose,
            "comparison_id": comparison_id,
            "emulated": None if emulated is None else int(emulated),
        },
    )
    if in_comparison is not None:
        column = runs_table.c.comparison_id
        where.append(column.is_not(None) if in_comparison else column.is_(None))
    newest_first = (runs_table.c.created_at.desc(), runs_table.c.id.desc())
    if not newest_per_key:
        return sa.select(runs_table).where(*where).order_by(*newest_first).limit(limit)
    rank = sa.func.row_number().over(partition_by=[runs_table.c[name] for name in RUN_KEY], order_by=newest_first)
    ranked = sa.select(runs_table, rank.label("newest_rank")).where(*where).subquery()
    columns = [ranked.c[column.name] for column in runs_table.c]
    return (
        sa.select(*columns)
        .where(ranked.c.newest_rank == 1)
        .order_by(ranked.c.created_at.desc(), ranked.c.id.desc())
        .limit(limit)
    )


class ResultsStore:
    """The results database. Use as a context manager (``with ResultsStore() as store:``).

    ``db`` is a file path, a ``sqlite:///`` or a ``postgresql://`` URL (see
    :func:`database_url`; None: ``MOBILEBENCH_DB``, else ``results/mobilebench.sqlite``).
    With ``create=False`` a missing SQLite file, or a PostgreSQL database without
    mobilebench's tables, is a :class:`~mobilebench.errors.UsageError` instead of a new
    database (the report commands use this, so a mistyped ``--db`` creates nothing).
    ``timeout_s`` is how long a SQLite writer waits for another one, and how long
    connecting to a PostgreSQL server may take.

    Every failure of the database (locked, disk full, refused connection, bad password)
    is raised as a one-line :class:`~mobilebench.errors.MobilebenchError` naming it.
    """

    def __init__(self, db: str | Path | None = None, *, create: bool = True, timeout_s: float = 30.0) -> None:
        self.url = database_url(db)
        self.dialect = self.url.get_backend_name()
        #: The SQLite file, or None for a server database.
        self.path: Path | None = Path(self.url.database) if self.dialect == "sqlite" else None
        #: What messages call the database: the file, or the URL without its password.
        self.location = str(self.path) if self.path is not None else _hide_password(self.url.set(drivername="postgresql"))
        self.timeout_s = float(self.url.query.get("timeout", timeout_s)) if self.path is not None else timeout_s
        if self.path is not None:
            if self.path.is_dir():
                raise UsageError(f"results database path {self.path} is a directory")
            if not self.path.exists():
                if not create:
                    raise UsageError(f"no results database at {self.path}: run `mobilebench profile` first or pass --db")
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise MobilebenchError(f"cannot create results database {self.path}: {exc.strerror}") from None
        self.engine = self._create_engine()
        try:
            self._migrate(create)
        except BaseException:
            self.engine.dispose()
            raise

    def _create_engine(self) -> sa.Engine:
        if self.path is None:
            return sa.create_engine(
                self.url,
                connect_args={"connect_timeout": max(1, round(self.timeout_s)), "application_name": "mobilebench"},
            )
        connect_args = {} if "timeout" in self.url.query else {"timeout": self.timeout_s}
        engine = sa.create_engine(self.url, connect_args=connect_args)

        # SQLAlchemy's recipe for SQLite transactions: the driver leaves transactions to
        # us (isolation_level=None) and every one begins explicitly; writers take the
        # write lock up front (IMMEDIATE), so two of them queue on the busy timeout
        # instead of failing half-way with "database is locked".
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.isolation_level = None
            # NORMAL is durable against a crashed or killed process in WAL mode (only an
            # OS crash can lose the last commits), and much faster than FULL.
            for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL"):
                dbapi_connection.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _on_begin(connection: sa.Connection) -> None:
            write = connection.get_execution_options().get("mobilebench_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        On SQLite it holds the write lock from its start. Database failures come out
        as one-line :class:`~mobilebench.errors.MobilebenchError`.
        """
        with self._errors(), self.engine.connect() as conn:
            conn.execution_options(mobilebench_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read-only connection (one consistent snapshot on SQLite), closed after the block."""
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.DBAPIError as exc:
            raise self._database_error(exc) from exc

    def _database_error(self, exc: sa.exc.DBAPIError) -> MobilebenchError:
        """One line saying what went wrong with the database and what to do."""
        reason = _one_line(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__)
        if self.path is None:
            if exc.statement is None:  # failed to connect
                return MobilebenchError(
                    f"cannot connect to the results database {self.location}: {_one_line(exc.orig)} "
                    "(check the URL, that the server runs, and the credentials: the URL, PGPASSWORD or ~/.pgpass)"
                )
            return MobilebenchError(f"results database {self.location}: {reason}")
        lowered = reason.lower()
        if "locked" in lowered or "busy" in lowered:
            return MobilebenchError(
                f"results database {self.path} stayed locked by another writer for {self.timeout_s:g} s; "
                "retry when the other mobilebench (or sqlite3) process is done with it"
            )
        if "disk is full" in lowered or "disk i/o error" in lowered:
            free = self._free_bytes()
            if free is not None and free < 1 << 20:
                return MobilebenchError(
                    f"the disk holding results database {self.path} is full ({free} bytes free): "
                    "free some space and run again"
                )
            return MobilebenchError(
                f"results database {self.path}: {reason} (the disk is not full: {free} bytes free; "
                "check the disk and its file size limits)"
            )
        if "readonly" in lowered or "read-only" in lowered:
            return MobilebenchError(f"results database {self.path} is read-only here: {reason}; pass a writable --db")
        return MobilebenchError(f"results database {self.path}: {reason}")

    def _free_bytes(self) -> int | None:
        assert self.path is not None
        try:
            return shutil.disk_usage(self.path.resolve().parent).free
        except OSError:
            return None

    # -- schema ------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        with self.reading() as conn:
            return self._read_version(conn)

    def _read_version(self, conn: sa.Connection) -> int:
        if self.dialect == "sqlite":
            return conn.exec_driver_sql("PRAGMA user_version").scalar_one()
        if not sa.inspect(conn).has_table(pg_version_table.name):
            return 0
        return conn.execute(sa.select(pg_version_table.c.version)).scalar_one()

    def _write_version(self, conn: sa.Connection, version: int) -> None:
        if self.dialect == "sqlite":
            # user_version lives in the file header and is rolled back with the rest.
            conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
            return
        pg_version_table.create(conn, checkfirst=True)
        conn.execute(sa.delete(pg_version_table))
        conn.execute(sa.insert(pg_version_table).values(version=version))

    def _migrate(self, create: bool) -> None:
        with self.reading() as conn:
            version = self._read_version(conn)
        if version == SCHEMA_VERSION:
            return
        if version == 0 and not create:
            raise UsageError(f"no mobilebench results in {self.location}: run `mobilebench profile` first or pass --db")
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                # Two processes opening a new database: the second waits, then sees it done.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(2021)"))
            # Re-read under the lock: another process may have migrated meanwhile.
            version = self._read_version(conn)
            if version > SCHEMA_VERSION:
                raise MobilebenchError(
                    f"results database {self.location} has schema version {version}, newer than this "
                    f"mobilebench understands ({SCHEMA_VERSION}); upgrade mobilebench"
                )
            if version == SCHEMA_VERSION:
                return
            try:
                if version == 0:
                    metadata.create_all(conn, checkfirst=False)
                else:
                    if version not in UPGRADES or (self.dialect != "sqlite" and version < 3):
                        raise MobilebenchError(f"results database {self.location}: no upgrade from schema {version}")
                    for number in range(version, SCHEMA_VERSION):
                        for statement in UPGRADES[number]:
                            conn.exec_driver_sql(statement)
            except sa.exc.DBAPIError as exc:
                raise MobilebenchError(
                    f"cannot set up results database {self.location} (schema {version} -> {SCHEMA_VERSION}): "
                    f"{_one_line(exc.orig)}"
                ) from exc
            self._write_version(conn, SCHEMA_VERSION)

    # -- extension points --------------------------------------------------------------------
    # Called inside the transaction that inserts, completes or fails a run, so that a
    # subclass can commit more rows with it, or veto it by raising a MobilebenchError
    # (which rolls the whole transaction back): the lab's worker completes a run's job
    # together with the run (mobilebench.lab.queue.JobStore).

    def run_started(self, conn: sa.Connection, run_id: int) -> None:
        """The ``running`` row ``run_id`` was inserted (not yet committed)."""

    def run_completed(self, conn: sa.Connection, run_id: int) -> None:
        """Run ``run_id`` was stored ``ok`` with its samples (not yet committed)."""

    def run_failed(self, conn: sa.Connection, run_id: int, error: str) -> None:
        """Run ``run_id`` was stored ``failed`` with ``error`` (not yet committed)."""

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, meta: RunMeta) -> int:
        """Insert a ``running`` row for this process and commit it; returns the run id."""
        cols = _meta_to_columns(meta)
        cols.update(created_at=utc_now(), status="running", host=socket.gethostname(), pid=os.getpid())
        with self.transaction() as conn:
            run_id = int(conn.execute(sa.insert(runs_table).values(cols)).inserted_primary_key[0])
            self.run_started(conn, run_id)
        return run_id

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
        rows = [
            {
                "run_id": run_id,
                "i": s.i,
                "latency_ms": float(s.latency_ms),
                "warmup": int(s.warmup),
                "averaged_over": s.averaged_over,
                "pair": s.pair,
            }
            for s in samples
        ]
        with self.transaction() as conn:
            self._finish_running(conn, runs_table, "run", run_id, cols)
            if rows:
                try:
                    conn.execute(sa.insert(samples_table), rows)
                except sa.exc.IntegrityError as exc:
                    raise MobilebenchError(
                        f"run {run_id}: invalid samples ({_one_line(exc.orig)}); iteration indices must be unique"
                    ) from None
            self._insert_ops(conn, run_id, ops)
            self.run_completed(conn, run_id)

    def fail_run(self, run_id: int, error: str, meta: RunMeta | None = None) -> None:
        """Mark a ``running`` run ``failed`` with a one-line reason (and final metadata)."""
        cols = _meta_to_columns(meta) if meta is not None else {}
        cols.update(status="failed", finished_at=utc_now(), error=_one_line(error))
        with self.transaction() as conn:
            self._finish_running(conn, runs_table, "run", run_id, cols)
            self.run_failed(conn, run_id, cols["error"])

    def _finish_running(self, conn: sa.Connection, table: sa.Table, what: str, row_id: int, cols: dict[str, Any]) -> None:
        """Update a ``running`` row with ``cols``; any other status means it already ended."""
        updated = conn.execute(
            sa.update(table).where(table.c.id == row_id, table.c.status == "running").values(cols)
        ).rowcount
        if updated == 1:
            return
        status = conn.execute(sa.select(table.c.status).where(table.c.id == row_id)).scalar_one_or_none()
        if status is None:
            raise MobilebenchError(f"{what} {row_id} does not exist in {self.location}")
        raise MobilebenchError(f"{what} {row_id} is already {status}; only a running {what} can be finished")

    def mark_stale_runs_aborted(self) -> int:
        """Mark ``running`` runs and comparisons of dead processes on this host ``aborted``.

        Returns how many runs it marked. Rows started on another host are left alone:
        their process cannot be checked here (the lab queue aborts the runs of workers
        whose lease expired, wherever they ran).
        """
        host = socket.gethostname()
        marked = 0
        for table, what in ((comparisons_table, "comparison"), (runs_table, "run")):
            with self.reading() as conn:
                rows = conn.execute(
                    sa.select(table.c.id, table.c.pid).where(table.c.status == "running", table.c.host == host)
                ).all()
            stale = [(row_id, pid) for row_id, pid in rows if not process_alive(host, pid)]
            if not stale:
                continue
            now = utc_now()
            with self.transaction() as conn:
                for row_id, pid in stale:
                    conn.execute(
                        sa.update(table)
                        .where(table.c.id == row_id, table.c.status == "running")
                        .values(
                            status="aborted",
                            finished_at=now,
                            error=f"process {pid} on {host} ended before the {what} finished (killed or crashed)",
                        )
                    )
            if table is runs_table:
                marked = len(stale)
        return marked

    def runs(self, **filters: Any) -> list[RunRecord]:
        """Runs matching every given filter (those of :func:`runs_query`), newest first."""
        with self.reading() as conn:
            return [_run_record(row) for row in conn.execute(runs_query(**filters)).mappings()]

    def get_run(self, run_id: int) -> RunRecord | None:
        with self.reading() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.id == run_id)).mappings().first()
        return _run_record(row) if row else None

    def samples(self, run_id: int) -> list[Sample]:
        """All samples of a run in iteration order (warm-up included, flagged)."""
        table = samples_table
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.i)
        with self.reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Sample(
                i=r["i"], latency_ms=r["latency_ms"], warmup=bool(r["warmup"]), averaged_over=r["averaged_over"], pair=r["pair"]
            )
            for r in rows
        ]

    # -- operators of per-op runs ------------------------------------------------------------

    def record_ops(self, run_id: int, ops: Sequence[OpRecord]) -> None:
        """Store the operators of a finished ``per-op`` run (all or none).

        :meth:`complete_run` takes them too (``ops=``), in the run's own transaction;
        this is for operators computed after the run was stored.
        """
        with self.transaction() as conn:
            self._insert_ops(conn, run_id, ops, check_run=True)

    def _insert_ops(self, conn: sa.Connection, run_id: int, rows: Sequence[OpRecord], *, check_run: bool = False) -> None:
        if not rows and not check_run:
            return
        purpose = conn.execute(sa.select(runs_table.c.purpose).where(runs_table.c.id == run_id)).scalar_one_or_none()
        if purpose is None:
            raise MobilebenchError(f"run {run_id} does not exist in {self.location}")
        if not rows:
            return
        if purpose != "per-op":
            raise MobilebenchError(f"run {run_id} is a {purpose} run; operators belong to per-op runs")
        for op in rows:
            if op.run_id != run_id:
                raise MobilebenchError(f"operator {op.name!r} belongs to run {op.run_id}, not run {run_id}")
        try:
            conn.execute(sa.insert(ops_table), [{name: getattr(op, name) for name in _OP_FIELDS} for op in rows])
        except sa.exc.IntegrityError as exc:
            raise MobilebenchError(f"run {run_id}: invalid operators ({_one_line(exc.orig)}); ranks must be unique") from None

    def ops(self, run_id: int) -> list[OpRecord]:
        """The operators of a ``per-op`` run, slowest first (rank 0)."""
        table = ops_table
        query = sa.select(*(table.c[name] for name in _OP_FIELDS)).where(table.c.run_id == run_id).order_by(table.c.rank)
        with self.reading() as conn:
            return [OpRecord(**row) for row in conn.execute(query).mappings()]

    # -- comparisons -------------------------------------------------------------------------

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
        with self.transaction() as conn:
            return int(conn.execute(sa.insert(comparisons_table).values(cols)).inserted_primary_key[0])

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
        with self.transaction() as conn:
            self._finish_running(conn, comparisons_table, "comparison", comparison_id, cols)

    def fail_comparison(self, comparison_id: int, error: str) -> None:
        """Mark a ``running`` comparison ``failed`` with a one-line reason."""
        cols = dict(status="failed", finished_at=utc_now(), error=_one_line(error))
        with self.transaction() as conn:
            self._finish_running(conn, comparisons_table, "comparison", comparison_id, cols)

    def comparisons(
        self,
        *,
        baseline: str | None = None,
        candidate: str | None = None,
        device: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[ComparisonRecord]:
        """Comparisons matching every given filter, newest first; ``device`` is the device
        profile's name."""
        _check_choice(status, RUN_STATUSES, "comparison status")
        _check_limit(limit)
        table = comparisons_table
        where = _matching(table, {"baseline": baseline, "candidate": candidate, "device_profile": device, "status": status})
        query = sa.select(table).where(*where).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        with self.reading() as conn:
            return [_comparison_record(row) for row in conn.execute(query).mappings()]

    def get_comparison(self, comparison_id: int) -> ComparisonRecord | None:
        with self.reading() as conn:
            row = conn.execute(sa.select(comparisons_table).where(comparisons_table.c.id == comparison_id)).mappings().first()
        return _comparison_record(row) if row else None

    # -- accuracy ----------------------------------------------------------------------------

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
        values = dict(
            created_at=utc_now(),
            model=model,
            checkpoint_sha256=checkpoint_sha256,
            dataset=dataset,
            top1=float(top1),
            top5=None if top5 is None else float(top5),
            source=source,
            runtime=runtime,
            dtype=dtype,
            artifact_sha256=artifact_sha256,
            images=images,
        )
        with self.transaction() as conn:
            return int(conn.execute(sa.insert(accuracy_table).values(values)).inserted_primary_key[0])

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
        _check_choice(runtime, ACCURACY_RUNTIMES, "accuracy runtime")
        _check_limit(limit)
        table = accuracy_table
        where = _matching(
            table,
            {
                "model": model,
                "runtime": runtime,
                "dtype": dtype,
                "artifact_sha256": artifact_sha256,
                "checkpoint_sha256": checkpoint_sha256,
                "dataset": dataset,
            },
        )
        query = (
            sa.select(*(table.c[name] for name in _ACCURACY_FIELDS))
            .where(*where)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self.reading() as conn:
            return [AccuracyRecord(**row) for row in conn.execute(query).mappings()]

    def accuracy(self, model: str, **filters: Any) -> AccuracyRecord | None:
        """The newest accuracy record of a model matching ``filters`` (those of
        :meth:`accuracy_records`: runtime, dtype, artifact_sha256, ...), or None."""
        found = self.accuracy_records(model, limit=1, **filters)
        return found[0] if found else None

    def accuracy_models(self) -> list[str]:
        """Models with at least one accuracy record, sorted."""
        with self.reading() as conn:
            return list(conn.execute(sa.select(accuracy_table.c.model).distinct().order_by(accuracy_table.c.model)).scalars())
