"""The queue's rules on both engines, without phones: order, leases, one job per phone,
exactly-once completion, and many claimers at once."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from mobilebench.bench.stats import summarize
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.lab.queue import MAX_ATTEMPTS, JobOptions, JobQueue, JobStore, LeaseLost, NewJob
from mobilebench.records import RunMeta, Sample

META = RunMeta(model="skipnet_m", runtime="executorch", backend="xnnpack", dtype="fp32", device_profile="emulator")


@pytest.fixture
def store(results_db):
    with JobStore(results_db) as s:
        yield s


def submit(queue: JobQueue, n: int, device: str = "emulator") -> list[int]:
    return queue.submit([NewJob(f"model_{k}", device, JobOptions(iterations=3), "ab" * 32) for k in range(n)])


def claim(queue, worker, phone="host|adb-tcp:127.0.0.1:1", lease_s=30.0, device="emulator"):
    return queue.claim(device=device, phone=phone, worker=worker, lease_s=lease_s)


def complete(store: JobStore, job) -> int:
    """What a worker's profile session does with a claimed job."""
    store.job = job
    try:
        run_id = store.start_run(META)
        store.complete_run(run_id, META, summarize([1.0, 2.0]), [Sample(0, 1.0), Sample(1, 2.0)])
    finally:
        store.job = None
    return run_id


def test_jobs_are_claimed_in_order_and_completed_with_their_run(store):
    queue = JobQueue(store)
    ids = submit(queue, 3) + submit(queue, 1, device="pixel4")
    listed = queue.jobs()
    assert [j.id for j in listed] == ids and {j.status for j in listed} == {"queued"}
    assert listed[0].options == JobOptions(iterations=3) and listed[0].submitted_by.count("@") == 1
    assert queue.pending("emulator") == 3 and queue.pending("pixel4") == 1
    job = claim(queue, "w1")
    assert job.id == ids[0] and job.status == "running" and job.attempts == 1 and job.worker == "w1"
    run_id = complete(store, job)
    done = queue.jobs([job.id])[0]
    assert (done.status, done.run_id, done.error, done.lease_expires) == ("done", run_id, None, None)
    run = store.get_run(run_id)
    assert run.status == "ok" and run.job_id == job.id
    assert claim(queue, "w1").id == ids[1]  # the phone was freed with the job
    assert queue.pending("emulator") == 2
    assert [j.id for j in queue.jobs(status="queued", device="emulator")] == [ids[2]]
    assert [j.id for j in queue.jobs(limit=2)] == ids[2:]
    with pytest.raises(UsageError, match="unknown job status"):
        queue.jobs(status="finished")


def test_one_job_per_phone_whoever_drives_it(store):
    queue = JobQueue(store)
    submit(queue, 3)
    first = claim(queue, "w1", phone="A")
    assert claim(queue, "w2", phone="A") is None  # same phone, another worker: wait
    second = claim(queue, "w3", phone="B")  # another phone: the next job
    assert second.id == first.id + 1
    assert queue.fail(first, "runner crashed:\n  SIGSEGV")
    failed = queue.jobs([first.id])[0]
    assert failed.status == "failed" and failed.error == "runner crashed: SIGSEGV"
    assert claim(queue, "w2", phone="A").id == second.id + 1


def test_an_expired_lease_hands_the_job_over_and_the_old_worker_cannot_finish(store):
    queue = JobQueue(store)
    (job_id,) = submit(queue, 1)
    old = claim(queue, "dead", phone="A", lease_s=0.3)
    store.job = old
    stale_run = store.start_run(META)  # the dead worker's attempt had begun its run
    store.job = None
    assert claim(queue, "alive", phone="B") is None  # still leased
    time.sleep(0.5)
    assert queue.renew(old, 0.3) is True  # a late renewal wins it back before anyone claims...
    time.sleep(0.5)
    new = claim(queue, "alive", phone="B")  # ...but not after it lapsed and was claimed
    assert new.id == job_id and new.attempts == 2 and new.worker == "alive"
    assert store.get_run(stale_run).status == "aborted" and "stopped renewing" in store.get_run(stale_run).error
    assert queue.renew(old, 30) is False
    with pytest.raises(LeaseLost):
        complete(store, old)  # the dead worker's late result is refused, rolled back
    assert queue.fail(old, "late") is False and queue.release(old, "late") is False
    run_id = complete(store, new)
    done = queue.jobs([job_id])[0]
    assert done.status == "done" and done.run_id == run_id
    oks = [r for r in store.runs(status="ok") if r.job_id == job_id]
    assert [r.id for r in oks] == [run_id]


def test_a_job_whose_workers_keep_dying_fails_after_its_attempts(store):
    queue = JobQueue(store)
    (job_id,) = submit(queue, 1)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = claim(queue, f"w{attempt}", phone=f"P{attempt}", lease_s=0.05)
        assert job.attempts == attempt
        time.sleep(0.15)
    assert claim(queue, "last", phone="Z") is None
    failed = queue.jobs([job_id])[0]
    assert failed.status == "failed" and f"{MAX_ATTEMPTS} times" in failed.error
    assert queue.pending("emulator") == 0


def test_a_released_job_goes_back_without_using_an_attempt(store):
    queue = JobQueue(store)
    (job_id,) = submit(queue, 1)
    job = claim(queue, "w1")
    assert queue.release(job, "worker stopped")
    back = queue.jobs([job_id])[0]
    assert (back.status, back.attempts, back.worker is not None) == ("queued", 0, True)
    assert claim(queue, "w2").attempts == 1


def test_lost_lease_at_run_start_inserts_no_run(store):
    queue = JobQueue(store)
    submit(queue, 1)
    job = claim(queue, "w1")
    store.job = replace(job, worker="someone else")
    with pytest.raises(LeaseLost, match="another worker took the job over"):
        store.start_run(META)
    store.job = None
    assert store.runs() == []


@pytest.mark.slow
def test_many_claimers_at_once_take_each_job_once(results_db):
    """8 threads (8 phones) with their own connections drain 40 jobs: each job is
    claimed by one worker, once (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""
    with JobStore(results_db) as setup:
        ids = submit(JobQueue(setup), 40)
    claimed: dict[int, list[str]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        try:
            with JobStore(results_db) as own:
                queue = JobQueue(own)
                while (job := claim(queue, f"w{k}", phone=f"phone{k}")) is not None:
                    with lock:
                        claimed.setdefault(job.id, []).append(job.worker)
                    complete(own, job)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert sorted(claimed) == ids and all(len(workers) == 1 for workers in claimed.values())
    with JobStore(results_db) as store:
        assert {j.status for j in JobQueue(store).jobs()} == {"done"}
        assert sorted(r.job_id for r in store.runs(status="ok")) == ids
    assert len({w for (w,) in claimed.values()}) > 1  # they did share the work


def test_a_bad_options_row_is_a_clear_error(store):
    from mobilebench.lab.queue import JobOptions

    with pytest.raises(MobilebenchError, match="unknown to this mobilebench"):
        JobOptions.from_json('{"iterations": 3, "warp_drive": true}')
