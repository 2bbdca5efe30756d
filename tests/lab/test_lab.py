"""The lab end to end: ``lab submit``, ``lab worker`` processes on emulated phones,
``lab status`` and ``lab wait``, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
from collections import defaultdict
from datetime import datetime

import pytest
import sqlalchemy as sa

from mobilebench.lab.queue import JobQueue
from mobilebench.schema import jobs_table
from mobilebench.store import ResultsStore
from tests.processes import runners_below, wait_for

from .conftest import submitted_ids

pytestmark = pytest.mark.slow

FEW = ("--warmup", "1", "--iterations", "5")


def submit(cli, db: str, *options: str, repeat: int = 1) -> list[int]:
    return submitted_ids(
        cli("lab", "submit", "skipnet_m", "--device", "emulator", "--repeat", repeat, *options, "--db", db, "--format", "json")
    )


def ok_runs_per_job(store: ResultsStore) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for run in store.runs(status="ok"):
        out[run.job_id].append(run.id)
    return dict(out)


def test_a_worker_killed_mid_job_holds_it_until_its_lease_expires(results_db, phones, workers, cli, skipnet_cached):
    phone = phones()
    ids = submit(cli, results_db, "--warmup", "1", "--iterations", "60", repeat=3)
    first = workers.start(results_db, phone, "--lease-s", "2")
    # Kill it while the runner measures its first job (the run row is 'running').
    wait_for(lambda: first.alive() and runners_below(), 180, "the first worker's runner")
    with ResultsStore(results_db, create=False) as store:
        (killed_job,) = JobQueue(store).jobs(status="running")
        (killed_run,) = store.runs(status="running")
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=30)
    assert killed_run.job_id == killed_job.id == ids[0]

    second = workers.start(results_db, phone, "--lease-s", "2", "--until-empty")
    log = workers.finish(second)
    assert second.proc.returncode == 0, log
    assert "3 done, 0 failed" in log and f"job {ids[0]}: skipnet_m on emulator (attempt 2)" in log

    with ResultsStore(results_db, create=False) as store:
        jobs = {j.id: j for j in JobQueue(store).jobs()}
        assert sorted(jobs) == ids and {j.status for j in jobs.values()} == {"done"}
        assert [jobs[i].attempts for i in ids] == [2, 1, 1]
        # Every job done exactly once: one ok run each, the job's own; the killed attempt aborted.
        per_job = ok_runs_per_job(store)
        assert sorted(per_job) == ids and all(len(runs) == 1 for runs in per_job.values())
        assert all(jobs[i].run_id == per_job[i][0] for i in ids)
        # (Marked by the next worker on this host, or, from another host, by the claim.)
        aborted = store.get_run(killed_run.id)
        assert aborted.status == "aborted" and "killed" in aborted.error
        assert store.runs(status="running") == []
    result = cli("lab", "status", "--db", results_db, "--format", "json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)["jobs"]
    assert [(j["id"], j["status"], j["attempts"]) for j in listed] == [(ids[0], "done", 2), (ids[1], "done", 1), (ids[2], "done", 1)]
    assert set(listed[0]) == {"id", "model", "device", "status", "run_id", "attempts", "error"}
    assert cli("lab", "wait", *ids, "--db", results_db, "--format", "csv").exit_code == 0


def test_four_workers_on_two_phones_never_run_two_jobs_on_one_phone(postgres_url, phones, workers, cli, skipnet_cached):
    two = [phones(), phones()]
    pool = [workers.start(postgres_url, phone, "--lease-s", "10") for phone in two for _ in range(2)]
    for worker in pool:  # all four are polling before there is work
        workers.wait_ready(worker)
    ids = submit(cli, postgres_url, *FEW, repeat=12)
    waited = cli("lab", "wait", *ids, "--poll-s", "0.5", "--timeout", "600", "--db", postgres_url, "--format", "json")
    assert waited.exit_code == 0, waited.stderr
    for worker in pool:  # idle: they stop at once
        assert workers.terminate(worker) == 128 + signal.SIGTERM

    with ResultsStore(postgres_url, create=False) as store:
        per_job = ok_runs_per_job(store)
        assert sorted(per_job) == ids and all(len(runs) == 1 for runs in per_job.values())
        by_phone = defaultdict(list)
        for run in store.runs(status="ok"):
            by_phone[run.meta.device_serial].append((datetime.fromisoformat(run.created_at), datetime.fromisoformat(run.finished_at)))
        with store.reading() as conn:
            workers_used = conn.execute(sa.select(sa.func.count(sa.distinct(jobs_table.c.worker)))).scalar_one()
    assert set(by_phone) == {phone.address for phone in two}  # both phones measured
    for address, intervals in by_phone.items():
        intervals.sort()
        for (_, end), (start, _) in zip(intervals, intervals[1:]):
            assert start >= end, f"two runs at once on {address}"
    assert workers_used >= 2


def test_an_artifact_that_differs_from_the_submitters_fails_the_job(tmp_path, phones, workers, cli, skipnet_cached):
    db = str(tmp_path / "lab.sqlite")
    (job_id,) = submit(cli, db, *FEW)
    with ResultsStore(db) as store, store.transaction() as conn:  # as if the submitter's toolchain differed
        conn.execute(sa.update(jobs_table).values(artifact_sha256="00" * 32))
    log = workers.finish(workers.start(db, phones(), "--until-empty"))
    assert "0 done, 1 failed" in log
    result = cli("lab", "wait", job_id, "--db", db)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: 1 of 1 job(s) failed: job {job_id}: artifact mismatch: this worker's export of skipnet_m")
    assert "the submitter's had 0000000000000000..." in line
    with ResultsStore(db, create=False) as store:
        assert store.runs() == []  # nothing was measured


def test_a_terminated_worker_puts_its_job_back(tmp_path, phones, workers, cli, skipnet_cached):
    db, phone = str(tmp_path / "lab.sqlite"), phones()
    (job_id,) = submit(cli, db, "--warmup", "1", "--iterations", "60")
    first = workers.start(db, phone)
    wait_for(lambda: first.alive() and runners_below(), 180, "the worker's runner")
    assert workers.terminate(first) == 128 + signal.SIGTERM
    with ResultsStore(db, create=False) as store:
        (job,) = JobQueue(store).jobs()
        assert (job.status, job.attempts) == ("queued", 0) and "stopped" in job.error
        (run,) = store.runs()
        assert run.status == "failed" and "terminated" in run.error
    log = workers.finish(workers.start(db, phone, "--until-empty"))
    assert "1 done" in log
    with ResultsStore(db, create=False) as store:
        assert JobQueue(store).jobs()[0].status == "done" and sorted(ok_runs_per_job(store)) == [job_id]


def test_submit_checks_before_queueing(tmp_path, cli):
    db = str(tmp_path / "lab.sqlite")
    result = cli("lab", "submit", "skipnet_m", "--device", "pixel44", "--db", db)
    assert result.exit_code == 2 and "unknown device profile 'pixel44'" in result.stderr and "pixel4" in result.stderr
    result = cli("lab", "submit", "skipnet_m", "--device", "emulator", "--max-iterations", "5", "--db", db)
    assert result.exit_code == 2 and "--max-iterations only applies with --target-rel-ci" in result.stderr
    result = cli("lab", "submit", "no_such_model", "--device", "emulator", "--db", db)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    with ResultsStore(db) as store:
        assert JobQueue(store).jobs() == []
    assert cli("lab", "wait", 99, "--db", db).exit_code == 2


def test_a_worker_whose_phone_is_unreachable_puts_the_job_back(tmp_path, workers, cli, skipnet_cached):
    import socket

    db = str(tmp_path / "lab.sqlite")
    (job_id,) = submit(cli, db, *FEW)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        gone = type("Gone", (), {"address": f"127.0.0.1:{s.getsockname()[1]}"})()
    worker = workers.start(db, gone, "--until-empty")
    log = workers.finish(worker)
    assert worker.proc.returncode == 1
    assert log.strip().splitlines()[-1].startswith("error: cannot reach device 'emulator' at 127.0.0.1:")
    with ResultsStore(db, create=False) as store:
        (job,) = JobQueue(store).jobs()
        assert (job.id, job.status, job.attempts) == (job_id, "queued", 0) and "unreachable" in job.error
        assert store.runs() == []
