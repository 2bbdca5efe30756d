"""How many jobs per second the lab queue turns over, on SQLite and on PostgreSQL.

What a lab with many phones asks of the database: every job is a claim (the phone's
lease row locked, the next job taken with SKIP LOCKED), a run inserted, its completion
(statistics, ``--samples`` samples and the job's completion in one transaction), and
lease renewals while it runs. This benchmark does exactly that with W workers (threads,
each with its own connection, each on its own "phone") and no phone at all, so what it
measures is the queue's ceiling: jobs per second over all workers, and the median and
95th percentile of one claim's wall time. A real job takes seconds to minutes on its
phone, so the ceiling divided by the job rate a lab needs is its headroom.

Usage: .venv/bin/python benchmarks/bench_lab_queue.py [--jobs 400] [--workers 1,4,16]
       [--samples 50] [--db PATH_OR_URL ...] [--start-postgres]
Without --db: a temporary SQLite file, and with --start-postgres also a temporary
PostgreSQL server (the tests' set-up, tests/pg.py: Debian's postgresql package, run as
an unprivileged user). Prints one line per (database, workers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from mobilebench.lab.queue import JobOptions, JobQueue, JobStore, NewJob
from mobilebench.records import LatencyStats, RunMeta, Sample

META = RunMeta(model="bench", runtime="executorch", backend="xnnpack", dtype="fp32", device_profile="bench")


def one_pass(db: str, jobs: int, workers: int, samples: int) -> tuple[float, list[float]]:
    """Drain ``jobs`` jobs with ``workers`` threads; (jobs per second, claim seconds)."""
    with JobStore(db) as store:
        ids = JobQueue(store).submit([NewJob("bench", "bench", JobOptions(), None) for _ in range(jobs)])
    stats = LatencyStats(
        n=samples, median_ms=1.0, mean_ms=1.0, min_ms=1.0, max_ms=1.0, p10_ms=1.0, p90_ms=1.0, std_ms=0.0,
        cv=0.0, mad_ms=0.0, ci_low_ms=1.0, ci_high_ms=1.0, ci_method="bench",
    )  # fmt: skip
    rows = [Sample(i, 1.0) for i in range(samples)]
    claim_s: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            with JobStore(db) as own:
                queue = JobQueue(own)
                while True:
                    started = time.perf_counter()
                    job = queue.claim(device="bench", phone=f"phone{k}", worker=f"w{k}", lease_s=60)
                    with lock:
                        claim_s.append(time.perf_counter() - started)
                    if job is None:
                        return
                    own.job = job
                    run_id = own.start_run(META)
                    queue.renew(job, 60)
                    own.complete_run(run_id, META, stats, rows)
        except BaseException as exc:  # noqa: BLE001 (reported by the caller)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    with JobStore(db) as store:
        done = len(JobQueue(store).jobs(ids, status="done"))
    if done != jobs:
        raise SystemExit(f"{done} of {jobs} jobs done in {db}")
    return jobs / elapsed, claim_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--db", action="append", default=[])
    parser.add_argument("--start-postgres", action="store_true")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-queue-"))
    databases = list(args.db) or [f"sqlite:///{tmp}/queue.sqlite?timeout=60"]
    server = None
    if args.start_postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pg

        server = pg._start(Path(tempfile.mkdtemp(prefix="bench-lab-pg-")))
        databases.append(server[0].new_database())
    try:
        for db in databases:
            engine = "postgresql" if db.startswith("postgresql") else "sqlite"
            for workers in counts:
                rate, claims = one_pass(db, args.jobs, workers, args.samples)
                claims.sort()
                p95 = claims[int(0.95 * (len(claims) - 1))]
                print(
                    f"{engine:10s} workers {workers:3d}: {rate:7.1f} jobs/s; one claim: median "
                    f"{statistics.median(claims) * 1e3:6.1f} ms, p95 {p95 * 1e3:6.1f} ms ({args.jobs} jobs, "
                    f"{args.samples} samples each)",
                    flush=True,
                )
    finally:
        if server is not None:
            import subprocess

            (pg_server, prefix, bin_dir) = server
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(pg_server.data_dir), "-m", "fast", "-w", "stop"], check=False)


if __name__ == "__main__":
    main()
