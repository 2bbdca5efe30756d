"""A lab worker: claims the queue's jobs for one phone and profiles them, one at a time.

Run one worker per phone, on the host the phone is attached to (``mobilebench lab
worker --device pixel4 --address 192.168.1.20:5555``); a host with three phones runs
three. Each job goes through :class:`~mobilebench.bench.session.ProfileSession` like a
``mobilebench profile`` of one model: export (from the worker's artifact cache, checked
against the hash the submitter recorded), push, run pinned, store. A thread renews the
lease every third of ``lease_s`` while the job runs; the run's completion and the job's
are one transaction (:class:`~mobilebench.lab.queue.JobStore`).

A worker checks that its phone answers before it runs a job it claimed, and puts the
job back when it does not, so a phone that is switched off does not fail the queue's
jobs one after the other. Ctrl-C or SIGTERM put the job in
hand back in the queue (the run is stored as failed, "terminated") before the worker exits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mobilebench.bench.session import ProfileConfig, ProfileSession
from mobilebench.device import connect, get_profile
from mobilebench.errors import MobilebenchError
from mobilebench.export import Artifact, ExportOptions, export_model
from mobilebench.lab.queue import JobQueue, JobRecord, JobStore, phone_key, worker_name
from mobilebench.zoo.resolve import ResolvedModel, resolve_model

#: An unreachable phone is tried again after this many poll intervals.
UNREACHABLE_BACKOFF = 5


@dataclass(frozen=True)
class WorkerConfig:
    """Which phone a worker drives and how it holds jobs; times in seconds.

    ``device`` is the profile the jobs name (``address``/``devices_file`` as for
    ``mobilebench profile``). A job is held for ``lease_s`` after the last renewal:
    a dead worker's job waits that long before another worker takes it. ``poll_s`` is
    how often an idle worker looks for jobs; with ``until_empty`` it exits once no job
    for its device is queued or running anywhere.
    """

    device: str
    address: str | None = None
    devices_file: Path | None = None
    lease_s: float = 60.0
    poll_s: float = 2.0
    until_empty: bool = False
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.lease_s > 0 or not self.poll_s > 0 or not self.connect_timeout_s > 0:
            raise MobilebenchError("lease, poll and connect times must be positive")


@dataclass
class WorkerSummary:
    done: int = 0
    failed: int = 0
    lost: int = 0  # jobs another worker took over after this one's lease ran out


class _LeaseKeeper:
    """Renews a job's lease every ``lease_s / 3`` seconds in a thread, until stopped."""

    def __init__(self, queue: JobQueue, job: JobRecord, lease_s: float, report: Callable[[str], None]) -> None:
        self.lost = False
        self._queue, self._job, self._lease_s, self._report = queue, job, lease_s, report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-job-{job.id}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                held = self._queue.renew(self._job, self._lease_s)
            except MobilebenchError as exc:  # the database is away: keep trying while the lease lasts
                self._report(f"job {self._job.id}: could not renew its lease: {exc}")
                continue
            if not held:
                self.lost = True
                self._report(f"job {self._job.id}: lease lost, another worker took the job over")
                return


class Worker:
    """Claims and runs jobs for one phone (see the module docstring).

    ``report`` receives one line per event (claimed, done, failed, waiting for the
    phone); ``export`` replaces :func:`~mobilebench.export.export_model` (tests).
    """

    def __init__(
        self,
        db: str | Path | None,
        config: WorkerConfig,
        *,
        report: Callable[[str], None] = lambda line: None,
        export: Callable[..., Artifact] = export_model,
    ) -> None:
        self.config = config
        self.profile = get_profile(config.device, address=config.address, extra_file=config.devices_file)
        self.phone = phone_key(self.profile)
        self.name = worker_name()
        self.store = JobStore(db)
        self.queue = JobQueue(self.store)
        self._report = report
        self._export = export

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self) -> WorkerSummary:
        """Claim and run jobs until stopped (or, with ``until_empty``, none is left)."""
        summary = WorkerSummary()
        aborted = self.store.mark_stale_runs_aborted()
        if aborted:
            self._report(f"marked {aborted} run(s) of killed processes on this host as aborted")
        self._report(f"worker {self.name} on {self.profile.name} ({self.phone}), lease {self.config.lease_s:g} s")
        while True:
            job = self.queue.claim(
                device=self.config.device, phone=self.phone, worker=self.name, lease_s=self.config.lease_s
            )
            if job is None:
                if self.config.until_empty and self.queue.pending(self.config.device) == 0:
                    return summary
                time.sleep(self.config.poll_s)
                continue
            if not self._phone_reachable(job):
                time.sleep(UNREACHABLE_BACKOFF * self.config.poll_s)
                continue
            outcome = self.run_job(job)
            setattr(summary, outcome, getattr(summary, outcome) + 1)

    def _phone_reachable(self, job: JobRecord) -> bool:
        """Whether the phone answers; if not, the job goes back to the queue for another."""
        try:
            with connect(self.profile, timeout_s=self.config.connect_timeout_s):
                return True
        except MobilebenchError as exc:
            self.queue.release(job, f"{self.profile.name} at {self.profile.endpoint} was unreachable: {exc}")
            if self.config.until_empty:
                raise
            self._report(f"{self.profile.name} ({self.profile.endpoint}) unreachable, job {job.id} put back: {exc}")
            return False

    def run_job(self, job: JobRecord) -> str:
        """Run one claimed job; returns ``done``, ``failed`` or ``lost``."""
        attempt = f" (attempt {job.attempts})" if job.attempts > 1 else ""
        self._report(f"job {job.id}: {job.model} on {self.profile.name}{attempt}")
        options = job.options
        self.store.job = job
        try:
            with _LeaseKeeper(self.queue, job, self.config.lease_s, self._report) as keeper:
                try:
                    resolved = resolve_model(
                        job.model,
                        checkpoint=Path(options.checkpoint) if options.checkpoint else None,
                        input_size=options.input_size,
                    )
                    config = ProfileConfig(
                        device=self.config.device,
                        address=self.config.address,
                        devices_file=self.config.devices_file,
                        connect_timeout_s=self.config.connect_timeout_s,
                        **options.measurement(),
                    )
                    session = ProfileSession(config, self.store, export=lambda r, o, p: self._checked_export(job, r, o))
                    (outcome,) = session.run([resolved])
                except MobilebenchError as exc:
                    if keeper.lost or not self.queue.fail(job, str(exc)):
                        self._report(f"job {job.id}: taken over by another worker; this attempt's result is dropped")
                        return "lost"
                    self._report(f"job {job.id}: failed: {exc}")
                    return "failed"
                except BaseException as exc:  # Ctrl-C, SIGTERM: the job is not at fault
                    self.queue.release(job, f"worker {self.name} stopped ({type(exc).__name__}) during attempt {job.attempts}")
                    raise
        finally:
            self.store.job = None
        stats = outcome.record.stats
        assert stats is not None
        self._report(f"job {job.id}: done, run {outcome.run_id}: median {stats.median_ms:.2f} ms over {stats.n} iterations")
        return "done"

    def _checked_export(self, job: JobRecord, resolved: ResolvedModel, options: ExportOptions) -> Artifact:
        """This host's export of the job's model, refused unless it is the submitter's."""
        artifact = self._export(resolved, options)
        expected = job.artifact_sha256
        if expected and artifact.sha256 != expected:
            raise MobilebenchError(
                f"artifact mismatch: this worker's export of {job.model} ({options.runtime} {options.dtype}) has sha256 "
                f"{artifact.sha256[:16]}..., the submitter's had {expected[:16]}...: the two hosts differ in "
                "mobilebench, torch or executorch versions, or in the checkpoint file; install the submitter's "
                "versions and submit again"
            )
        return artifact
