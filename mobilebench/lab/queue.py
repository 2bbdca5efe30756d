"""The lab's job queue: profile jobs in the results database, claimed by workers.

A job is one profile run of one model on one device profile (``pixel4``), with how to
export and measure it (:class:`JobOptions`) and the artifact hash the submitter's
export produced. It lives in the ``jobs`` table of the results database (SQLite for one
host, PostgreSQL for a lab), next to the runs it produces::

    queued --claim--> running --run stored ok--> done
                         |  \\--run or export failed--> failed (error)
                         \\--lease expired (worker killed) --> claimed again, attempt + 1
                             (after max_attempts: failed)

Leases. A worker that claims a job holds a lease on it and on its phone until
``lease_expires`` (seconds since the epoch by the database's clock, so hosts need not
agree on the time), and renews both while the job runs. A worker that dies (kill -9,
reboot, cut off from the database) stops renewing; once the lease has expired, another
worker claims the job again and aborts the dead attempt's run.

Exactly once. A run's completion and its job's completion are one transaction
(:class:`JobStore`), which only commits while the completing worker still holds the
job: so no job is done twice, and a job is only done with its ``ok`` run
(``runs.job_id``). None is lost: a job leaves the queue only as ``done``, or ``failed``
with its error.

One phone, one job. ``phone_leases`` has a row per phone (``host|transport:endpoint``);
claiming locks it, so two workers driving the same phone never run two jobs on it at
once, whichever hosts they run on.

Claims lock rows with ``SELECT ... FOR UPDATE`` (the phone) and ``FOR UPDATE SKIP
LOCKED`` (the next job) on PostgreSQL, so workers on different phones claim different
jobs without waiting for each other; on SQLite the claim is one ``BEGIN IMMEDIATE``
transaction, which serialises all claims (one host).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mobilebench.bench.measurement import Measurement
from mobilebench.device import DeviceProfile
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.schema import JOB_STATUSES, jobs_table, phone_leases_table, runs_table
from mobilebench.store import ResultsStore, database_time, utc_now

#: How many times a job is claimed before a job whose workers keep dying is failed.
MAX_ATTEMPTS = 3


@dataclass(frozen=True, kw_only=True)
class JobOptions(Measurement):
    """How to export and measure a job's model: a :class:`Measurement` and the model's
    ``checkpoint`` (a path the worker's host must be able to read; the artifact hash
    check catches a different file there) and ``input_size``."""

    checkpoint: str | None = None
    input_size: int | None = None

    @classmethod
    def from_json(cls, text: str) -> JobOptions:
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MobilebenchError(f"job options {', '.join(unknown)} are unknown to this mobilebench; upgrade it")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class NewJob:
    """A job to submit: ``artifact_sha256`` is what the submitter's export produced."""

    model: str
    device_profile: str
    options: JobOptions
    artifact_sha256: str | None


@dataclass(frozen=True)
class JobRecord:
    """A ``jobs`` row (see the module docstring for the life cycle)."""

    id: int
    created_at: str
    submitted_by: str
    model: str
    device_profile: str
    options: JobOptions
    artifact_sha256: str | None
    status: str
    attempts: int
    max_attempts: int
    worker: str | None
    phone: str | None
    lease_expires: float | None
    started_at: str | None
    finished_at: str | None
    run_id: int | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["options"] = asdict(self.options)
        return out


def _job(row: sa.RowMapping) -> JobRecord:
    values = {f.name: row[f.name] for f in fields(JobRecord)}
    values["options"] = JobOptions.from_json(row["options"])
    return JobRecord(**values)


def phone_key(profile: DeviceProfile) -> str:
    """What identifies a phone across the lab: the host it hangs off and its endpoint.

    (Two hosts' ``127.0.0.1:5555`` are two phones; a USB serial is one phone anywhere,
    but the host that drives it is what can run on it.)"""
    return f"{socket.gethostname()}|{profile.transport}:{profile.endpoint}"


def worker_name() -> str:
    """``host:pid:token``: unique even when a rebooted host reuses a process id."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def submitter() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class LeaseLost(MobilebenchError):
    """The worker no longer holds its job: its lease expired and another worker took it."""


class JobQueue:
    """The queue in a results database (a :class:`~mobilebench.store.ResultsStore`)."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store

    # -- submitters ---------------------------------------------------------------------

    def submit(self, jobs: list[NewJob]) -> list[int]:
        """Queue ``jobs`` in this order (claimed first in, first out); returns their ids."""
        created_at, by = utc_now(), submitter()
        ids = []
        with self.store.transaction() as conn:
            for job in jobs:
                values = dict(
                    created_at=created_at,
                    submitted_by=by,
                    model=job.model,
                    device_profile=job.device_profile,
                    options=job.options.to_json(),
                    artifact_sha256=job.artifact_sha256,
                    status="queued",
                    attempts=0,
                    max_attempts=MAX_ATTEMPTS,
                )
                ids.append(int(conn.execute(sa.insert(jobs_table).values(values)).inserted_primary_key[0]))
        return ids

    def jobs(
        self,
        ids: list[int] | None = None,
        *,
        device: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[JobRecord]:
        """Jobs in submission order (oldest first), filtered."""
        if status is not None and status not in JOB_STATUSES:
            raise UsageError(f"unknown job status {status!r}; expected one of {', '.join(JOB_STATUSES)}")
        query = sa.select(jobs_table).order_by(jobs_table.c.id)
        if ids is not None:
            query = query.where(jobs_table.c.id.in_(ids))
        if device is not None:
            query = query.where(jobs_table.c.device_profile == device)
        if status is not None:
            query = query.where(jobs_table.c.status == status)
        if limit is not None:
            # The newest `limit`, still listed oldest first.
            newest = query.order_by(None).order_by(jobs_table.c.id.desc()).limit(limit).subquery()
            query = sa.select(newest).order_by(newest.c.id)
        with self.store.reading() as conn:
            return [_job(row) for row in conn.execute(query).mappings()]

    def pending(self, device: str) -> int:
        """Jobs for ``device`` that are not finished: queued, or running (perhaps on a
        worker that died and whose lease will expire)."""
        query = sa.select(sa.func.count()).where(
            jobs_table.c.device_profile == device, jobs_table.c.status.in_(("queued", "running"))
        )
        with self.store.reading() as conn:
            return int(conn.execute(query).scalar_one())

    # -- workers -------------------------------------------------------------------------

    def claim(self, *, device: str, phone: str, worker: str, lease_s: float) -> JobRecord | None:
        """The next job for ``device``, claimed for ``worker`` on ``phone`` until the lease
        runs out; None when there is none, or the phone is busy with another worker's job.

        A job whose worker's lease expired is claimed like a queued one (its dead
        attempt's run is marked aborted); one that has used up its attempts is failed.
        """
        postgres = self.store.dialect == "postgresql"
        insert = (postgresql if postgres else sqlite).insert
        with self.store.transaction() as conn:
            now = database_time(conn)
            conn.execute(insert(phone_leases_table).values(phone=phone).on_conflict_do_nothing())
            held = conn.execute(
                sa.select(phone_leases_table).where(phone_leases_table.c.phone == phone).with_for_update()
            ).mappings().one()
            if held["worker"] not in (None, worker) and (held["lease_expires"] or 0.0) > now:
                return None  # another live worker is running a job on this phone
            claimable = sa.or_(
                jobs_table.c.status == "queued",
                sa.and_(jobs_table.c.status == "running", jobs_table.c.lease_expires < now),
            )
            while True:
                row = conn.execute(
                    sa.select(jobs_table)
                    .where(jobs_table.c.device_profile == device, claimable)
                    .order_by(jobs_table.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).mappings().first()
                if row is None:
                    return None
                job = _job(row)
                if job.status == "running":
                    self._abort_attempt(conn, job)
                    if job.attempts >= job.max_attempts:
                        conn.execute(
                            sa.update(jobs_table)
                            .where(jobs_table.c.id == job.id)
                            .values(
                                status="failed",
                                finished_at=utc_now(),
                                lease_expires=None,
                                error=f"its worker stopped renewing the lease {job.attempts} times "
                                "(killed, or cut off from the database); not tried again",
                            )
                        )
                        continue
                break
            claimed = dict(
                status="running",
                worker=worker,
                phone=phone,
                attempts=job.attempts + 1,
                lease_expires=now + lease_s,
                started_at=utc_now(),
                finished_at=None,
                run_id=None,
                error=None,
            )
            conn.execute(sa.update(jobs_table).where(jobs_table.c.id == job.id).values(claimed))
            conn.execute(
                sa.update(phone_leases_table)
                .where(phone_leases_table.c.phone == phone)
                .values(worker=worker, job_id=job.id, lease_expires=now + lease_s)
            )
        return replace(job, **claimed)

    def _abort_attempt(self, conn: sa.Connection, job: JobRecord) -> None:
        """Mark the run of a dead worker's attempt aborted (its process may be on another host)."""
        conn.execute(
            sa.update(runs_table)
            .where(runs_table.c.job_id == job.id, runs_table.c.status == "running")
            .values(
                status="aborted",
                finished_at=utc_now(),
                error=f"worker {job.worker} stopped renewing its lease on job {job.id} (killed or cut off)",
            )
        )

    def renew(self, job: JobRecord, lease_s: float) -> bool:
        """Extend the lease on ``job`` and its phone; False if the worker lost it."""
        with self.store.transaction() as conn:
            until = database_time(conn) + lease_s
            renewed = conn.execute(
                sa.update(jobs_table).where(*_held(job)).values(lease_expires=until)
            ).rowcount
            conn.execute(
                sa.update(phone_leases_table)
                .where(phone_leases_table.c.phone == job.phone, phone_leases_table.c.worker == job.worker)
                .values(lease_expires=until)
            )
        return renewed == 1

    def fail(self, job: JobRecord, error: str) -> bool:
        """Mark a held job ``failed`` with a one-line reason and free its phone; False
        if the worker no longer held it."""
        return self._finish(job, status="failed", error=" ".join(str(error).split()), finished_at=utc_now())

    def release(self, job: JobRecord, reason: str) -> bool:
        """Put a held job back in the queue (its worker is stopping; the attempt does
        not count) and free its phone; False if the worker no longer held it."""
        return self._finish(job, status="queued", error=reason, attempts=job.attempts - 1)

    def _finish(self, job: JobRecord, **values: Any) -> bool:
        with self.store.transaction() as conn:
            return self.finish_held(conn, job, **values)

    def finish_held(self, conn: sa.Connection, job: JobRecord, **values: Any) -> bool:
        """In ``conn``'s transaction: update the held ``job`` and free its phone."""
        updated = conn.execute(
            sa.update(jobs_table).where(*_held(job)).values(lease_expires=None, **values)
        ).rowcount
        if updated == 1:
            conn.execute(
                sa.update(phone_leases_table)
                .where(phone_leases_table.c.phone == job.phone, phone_leases_table.c.worker == job.worker)
                .values(worker=None, job_id=None, lease_expires=None)
            )
        return updated == 1


def _held(job: JobRecord) -> tuple[sa.ColumnElement[bool], ...]:
    """The job is still this worker's: running, claimed by it in this attempt."""
    return (
        jobs_table.c.id == job.id,
        jobs_table.c.status == "running",
        jobs_table.c.worker == job.worker,
        jobs_table.c.attempts == job.attempts,
    )


class JobStore(ResultsStore):
    """The results store a worker's profile session writes through: while ``job`` is
    set, a started run is tied to the job (``runs.job_id``), and completing the run
    completes the job in the same transaction. Either is refused (rolled back, raising
    :class:`LeaseLost`) once the worker no longer holds the job."""

    job: JobRecord | None = None

    def run_started(self, conn: sa.Connection, run_id: int) -> None:
        if self.job is None:
            return
        held = conn.execute(sa.update(jobs_table).where(*_held(self.job)).values(run_id=run_id)).rowcount
        if held != 1:
            raise self._lost()
        conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id).values(job_id=self.job.id))

    def run_completed(self, conn: sa.Connection, run_id: int) -> None:
        if self.job is None:
            return
        if not JobQueue(self).finish_held(conn, self.job, status="done", finished_at=utc_now(), error=None):
            raise self._lost()

    def _lost(self) -> LeaseLost:
        assert self.job is not None
        return LeaseLost(
            f"job {self.job.id}: this worker's lease ran out and another worker took the job over; "
            "this run is not the job's result"
        )

