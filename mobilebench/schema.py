"""The results database's tables, their schema version, and the upgrades of older ones.

Declared once with SQLAlchemy Core for both engines (:mod:`mobilebench.store` creates,
upgrades and queries them). Floats are double precision on both (``sa.Float``); booleans
are 0/1 integers and JSON is text, so the same SQL reads SQLite and PostgreSQL alike.
Column comments give units and conventions (PostgreSQL keeps them in the database).

To change the schema: change the tables, increment :data:`SCHEMA_VERSION`, and append
an upgrade to :data:`UPGRADES` that takes a database of the previous version there on
both engines (tests/store/test_sqlite.py checks that an upgraded file has the schema of
a new one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from mobilebench.records import ACCURACY_RUNTIMES, VERDICTS

RUN_STATUSES = ("running", "ok", "failed", "aborted")
JOB_STATUSES = ("queued", "running", "done", "failed")


def _in(column: str, values: Sequence[str | int]) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})")


def _status() -> sa.Column:
    return sa.Column("status", sa.Text, _in("status", RUN_STATUSES), nullable=False)


metadata = sa.MetaData()

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("finished_at", sa.Text),
    _status(),
    sa.Column("error", sa.Text),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("arch", sa.Text),
    sa.Column("checkpoint_sha256", sa.Text, comment="NULL: random initialisation"),
    sa.Column("artifact_sha256", sa.Text),
    sa.Column("artifact_path", sa.Text),
    sa.Column("runtime", sa.Text, nullable=False, comment="executorch | onnx"),
    sa.Column("backend", sa.Text, nullable=False, comment="xnnpack | cpu"),
    sa.Column("dtype", sa.Text, nullable=False, comment="fp32 | int8"),
    sa.Column("input_shape", sa.Text, comment="e.g. 1x3x224x224"),
    sa.Column("device_profile", sa.Text, nullable=False),
    sa.Column("emulated", sa.Integer, _in("emulated", (0, 1)), nullable=False, server_default="0"),
    sa.Column("device_model", sa.Text),
    sa.Column("device_board", sa.Text),
    sa.Column("android_version", sa.Text),
    sa.Column("fingerprint", sa.Text),
    sa.Column("device_serial", sa.Text),
    sa.Column("cpu", sa.Integer, comment="the core the runner was pinned to"),
    sa.Column("threads", sa.Integer, nullable=False, server_default="1"),
    sa.Column("governor", sa.Text),
    sa.Column("freq_khz_before", sa.Integer),
    sa.Column("freq_khz_after", sa.Integer),
    sa.Column("max_freq_khz", sa.Integer),
    sa.Column("temp_c_before", sa.Float),
    sa.Column("temp_c_after", sa.Float),
    sa.Column("runner_name", sa.Text),
    sa.Column("runner_version", sa.Text),
    sa.Column("runtime_version", sa.Text),
    sa.Column("toolkit_version", sa.Text),
    sa.Column("host", sa.Text, nullable=False, comment="the machine that drove the run"),
    sa.Column("pid", sa.Integer, nullable=False, comment="its process, to detect killed runs"),
    sa.Column("warmup", sa.Integer),
    sa.Column("iterations", sa.Integer, comment="requested timed iterations"),
    sa.Column("n", sa.Integer, comment="timed iterations the statistics cover"),
    sa.Column("load_ms", sa.Float),
    sa.Column("first_ms", sa.Float, comment="the cold first iteration"),
    sa.Column("median_ms", sa.Float),
    sa.Column("mean_ms", sa.Float),
    sa.Column("p10_ms", sa.Float),
    sa.Column("p90_ms", sa.Float),
    sa.Column("min_ms", sa.Float),
    sa.Column("max_ms", sa.Float),
    sa.Column("std_ms", sa.Float),
    sa.Column("cv", sa.Float, comment="std / mean, a fraction"),
    sa.Column("mad_ms", sa.Float),
    sa.Column("ci_low_ms", sa.Float, comment="95% CI of the median"),
    sa.Column("ci_high_ms", sa.Float),
    sa.Column("ci_method", sa.Text),
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]", comment="JSON list of strings"),
    sa.Column("state_before", sa.Text, comment="JSON device state snapshot"),
    sa.Column("state_after", sa.Text),
    sa.Column("extra", sa.Text, comment="JSON"),
    sa.Column("runner_build", sa.Text),
    sa.Column("abi", sa.Text),
    sa.Column("purpose", sa.Text, _in("purpose", ("latency", "per-op")), nullable=False, server_default="latency"),
    sa.Column("comparison_id", sa.Integer, sa.ForeignKey("comparisons.id")),
    sa.Column("peak_rss_bytes", sa.BigInteger),
    sa.Column("planned_memory_bytes", sa.BigInteger),
    sa.Column("warm_load_ms", sa.Float, comment="a second load in the same process"),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), comment="the lab job it was measured for"),
    sa.CheckConstraint("status != 'ok' OR (median_ms IS NOT NULL AND finished_at IS NOT NULL)"),
)
sa.Index("runs_by_status", runs_table.c.status, runs_table.c.created_at)
sa.Index("runs_by_key", runs_table.c.model, runs_table.c.device_profile, runs_table.c.runtime, runs_table.c.dtype, runs_table.c.status, runs_table.c.created_at)
sa.Index("runs_by_comparison", runs_table.c.comparison_id)
sa.Index("runs_by_job", runs_table.c.job_id)

samples_table = sa.Table(
    "samples",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("i", sa.Integer, primary_key=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("warmup", sa.Integer, _in("warmup", (0, 1)), nullable=False),
    sa.Column("averaged_over", sa.Integer, sa.CheckConstraint("averaged_over >= 1"), nullable=False, server_default="1"),
    sa.Column("pair", sa.Integer, comment="index of the interleaved (A, B) pair"),
)

accuracy_table = sa.Table(
    "accuracy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("checkpoint_sha256", sa.Text),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("top1", sa.Float, nullable=False, comment="percent"),
    sa.Column("top5", sa.Float, comment="percent"),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("runtime", sa.Text, _in("runtime", ACCURACY_RUNTIMES), nullable=False, server_default="eager"),
    sa.Column("dtype", sa.Text),
    sa.Column("artifact_sha256", sa.Text),
    sa.Column("images", sa.Integer),
)
sa.Index("accuracy_by_model", accuracy_table.c.model, accuracy_table.c.created_at)
sa.Index("accuracy_by_artifact", accuracy_table.c.artifact_sha256)

comparisons_table = sa.Table(
    "comparisons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("finished_at", sa.Text),
    _status(),
    sa.Column("baseline", sa.Text, nullable=False),
    sa.Column("candidate", sa.Text, nullable=False),
    sa.Column("device_profile", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("verdict", sa.Text, _in("verdict", VERDICTS)),
    sa.Column("ratio", sa.Float, comment="candidate / baseline"),
    sa.Column("ci_low", sa.Float, comment="95% CI of the ratio"),
    sa.Column("ci_high", sa.Float),
    sa.Column("pairs", sa.Integer),
    sa.Column("seconds", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.Text, nullable=False, comment="the machine that drove it"),
    sa.Column("pid", sa.Integer, nullable=False, comment="its process, to detect killed comparisons"),
    sa.Column("extra", sa.Text, comment="JSON"),
)

ops_table = sa.Table(
    "ops",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True, comment="0 = the slowest"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("delegate", sa.Text),
    sa.Column("ms", sa.Float, nullable=False, comment="median over the traced iterations"),
    sa.Column("macs", sa.Float, comment="fvcore's multiply-adds"),
    sa.Column("calls", sa.Integer, nullable=False, server_default="1"),
)

jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("submitted_by", sa.Text, nullable=False, comment="user@host"),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("device_profile", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False, comment="JSON: how to export and measure"),
    sa.Column("artifact_sha256", sa.Text, comment="the submitter's export; the worker's must match"),
    sa.Column("status", sa.Text, _in("status", JOB_STATUSES), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
    sa.Column("worker", sa.Text, comment="host:pid of the worker holding or last holding it"),
    sa.Column("phone", sa.Text, comment="the phone it ran on (see phone_leases)"),
    sa.Column("lease_expires", sa.Float, comment="seconds since the epoch, database clock"),
    sa.Column("started_at", sa.Text),
    sa.Column("finished_at", sa.Text),
    sa.Column("run_id", sa.Integer, comment="the run of its latest attempt (runs.job_id points back)"),
    sa.Column("error", sa.Text),
)
sa.Index("jobs_by_status", jobs_table.c.status, jobs_table.c.device_profile, jobs_table.c.id)

phone_leases_table = sa.Table(
    "phone_leases",
    metadata,
    sa.Column("phone", sa.Text, primary_key=True, comment="host|transport:endpoint"),
    sa.Column("worker", sa.Text),
    sa.Column("job_id", sa.Integer),
    sa.Column("lease_expires", sa.Float, comment="seconds since the epoch, database clock"),
)

#: The schema version the tables above describe.
SCHEMA_VERSION = 3

#: ``UPGRADES[v]`` takes a database from version ``v`` to ``v + 1``. Versions 1 and 2 exist
#: only as SQLite files (mobilebench 0.1, before PostgreSQL), so their upgrades are
#: SQLite's SQL; upgrades from 3 on must run on both engines. Never edit a released
#: upgrade: change the tables above and append one (tests check that upgrading an old
#: file gives the schema a new database gets).
UPGRADES: dict[int, tuple[str, ...]] = {
    # 2: old executor_runner builds print only a total, stored as one averaged sample;
    #    and the reports' "newest run per model and device" lookup gets an index.
    1: (
        "ALTER TABLE samples ADD COLUMN averaged_over INTEGER NOT NULL DEFAULT 1 CHECK (averaged_over >= 1)",
        "CREATE INDEX runs_by_key ON runs (model, device_profile, runtime, dtype, status, created_at)",
    ),
    # 3: which runner build ran for which ABI; memory and warm load; traced (per-op) runs
    #    kept apart from latency runs; interleaved comparisons with paired samples; the
    #    accuracy of an exported artifact in its runtime; per-operator rows; the lab queue.
    2: (
        """
        CREATE TABLE comparisons (
            id             INTEGER NOT NULL PRIMARY KEY,
            created_at     TEXT NOT NULL,
            finished_at    TEXT,
            status         TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'aborted')),
            baseline       TEXT NOT NULL,
            candidate      TEXT NOT NULL,
            device_profile TEXT NOT NULL,
            mode           TEXT NOT NULL,
            threshold      FLOAT NOT NULL,
            verdict        TEXT CHECK (verdict IN ('same', 'slower', 'faster', 'unknown')),
            ratio          FLOAT,
            ci_low         FLOAT,
            ci_high        FLOAT,
            pairs          INTEGER,
            seconds        FLOAT,
            error          TEXT,
            host           TEXT NOT NULL,
            pid            INTEGER NOT NULL,
            extra          TEXT
        )
        """,
        "ALTER TABLE runs ADD COLUMN runner_build TEXT",
        "ALTER TABLE runs ADD COLUMN abi TEXT",
        "ALTER TABLE runs ADD COLUMN purpose TEXT NOT NULL DEFAULT 'latency' CHECK (purpose IN ('latency', 'per-op'))",
        "ALTER TABLE runs ADD COLUMN comparison_id INTEGER REFERENCES comparisons (id)",
        "ALTER TABLE runs ADD COLUMN peak_rss_bytes BIGINT",
        "ALTER TABLE runs ADD COLUMN planned_memory_bytes BIGINT",
        "ALTER TABLE runs ADD COLUMN warm_load_ms FLOAT",
        "ALTER TABLE samples ADD COLUMN pair INTEGER",
        "CREATE INDEX runs_by_comparison ON runs (comparison_id)",
        """
        CREATE TABLE ops (
            run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            rank     INTEGER NOT NULL,
            name     TEXT NOT NULL,
            kind     TEXT NOT NULL,
            delegate TEXT,
            ms       FLOAT NOT NULL,
            macs     FLOAT,
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
        """
        CREATE TABLE jobs (
            id              INTEGER NOT NULL PRIMARY KEY,
            created_at      TEXT NOT NULL,
            submitted_by    TEXT NOT NULL,
            model           TEXT NOT NULL,
            device_profile  TEXT NOT NULL,
            options         TEXT NOT NULL,
            artifact_sha256 TEXT,
            status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            max_attempts    INTEGER NOT NULL DEFAULT 3,
            worker          TEXT,
            phone           TEXT,
            lease_expires   FLOAT,
            started_at      TEXT,
            finished_at     TEXT,
            run_id          INTEGER,
            error           TEXT
        )
        """,
        "CREATE INDEX jobs_by_status ON jobs (status, device_profile, id)",
        "ALTER TABLE runs ADD COLUMN job_id INTEGER REFERENCES jobs (id)",
        "CREATE INDEX runs_by_job ON runs (job_id)",
        "CREATE TABLE phone_leases (phone TEXT NOT NULL PRIMARY KEY, worker TEXT, job_id INTEGER, lease_expires FLOAT)",
    ),
}

#: Where PostgreSQL keeps the schema version (SQLite: ``PRAGMA user_version``).
pg_version_table = sa.Table("mobilebench_schema", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False))
