"""``mobilebench lab``: a job queue in the results database, drained by one worker per phone."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from mobilebench.cli.console import echo_err
from mobilebench.cli.parsing import (
    DAY_S,
    add_db_option,
    add_format_option,
    add_iteration_options,
    add_model_options,
    add_run_condition_options,
    add_runtime_options,
    bounded,
    measurement_options,
)

JOB_COLUMNS = ("id", "model", "device", "status", "run_id", "attempts", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(title="lab commands", metavar="COMMAND", dest="lab_command", required=True)

    submit = commands.add_parser(
        "submit",
        help="queue profile jobs for a device",
        description="Queue one job per model (times --repeat, interleaved A B A B) for the workers of a device "
        "profile. Each model is exported here first: its artifact's hash goes with the job, and a worker whose "
        "own export differs fails the job. Prints the job ids (wait on them with `mobilebench lab wait`).",
    )
    submit.add_argument("names", nargs="+", metavar="NAME", help="model cards or registry names (see `mobilebench models`)")
    submit.add_argument("--device", "-d", metavar="PROFILE", required=True, help="device profile the jobs are for")
    submit.add_argument("--repeat", metavar="R", type=bounded(int, minimum=1), default=1, help="jobs per model, interleaved (A B A B)")
    _add_measurement_options(submit)
    submit.add_argument("--devices-file", metavar="PATH", type=Path, help="extra devices.toml, read last (highest priority)")
    add_db_option(submit)
    add_format_option(submit, ("table", "csv", "json"))

    worker = commands.add_parser(
        "worker",
        help="run the queue's jobs on one phone",
        description="Claim the jobs queued for a device profile and profile them on this phone, one at a time, "
        "until stopped (Ctrl-C or SIGTERM put the job in hand back in the queue). Run one worker per phone, on "
        "the host it is attached to.",
    )
    worker.add_argument("--device", "-d", metavar="PROFILE", required=True, help="device profile of the jobs to run")
    worker.add_argument("--address", metavar="HOST:PORT", help="HOST:PORT of this phone (ADB over TCP), overriding the profile")
    worker.add_argument("--devices-file", metavar="PATH", type=Path, help="extra devices.toml, read last (highest priority)")
    worker.add_argument("--until-empty", action="store_true", help="exit once no job for the device is queued or running")
    worker.add_argument(
        "--lease-s",
        metavar="S",
        type=bounded(float, minimum=1, maximum=DAY_S),
        default=60.0,
        help="a job is held this long after its last renewal (renewed every third of it): "
        "how long a killed worker's job waits before another worker takes it",
    )
    worker.add_argument(
        "--poll-s", metavar="S", type=bounded(float, above=0, maximum=3600), default=2.0, help="how often an idle worker looks for jobs"
    )
    add_db_option(worker)

    status = commands.add_parser("status", help="list jobs", description="List the queue's jobs, oldest first.")
    status.add_argument("ids", nargs="*", type=bounded(int, minimum=1), metavar="ID", help="only these jobs")
    status.add_argument("--device", metavar="PROFILE", help="only jobs for this device profile")
    status.add_argument("--status", choices=("queued", "running", "done", "failed"), help="only jobs with this status")
    status.add_argument("--limit", metavar="N", type=bounded(int, minimum=1), default=50, help="show the newest N jobs")
    add_db_option(status)
    add_format_option(status, ("table", "csv", "json"))

    wait = commands.add_parser(
        "wait",
        help="wait until jobs are finished",
        description="Wait until every job named is done or failed; exit 0 when all are done, 1 when one failed "
        "(or the wait timed out), printing the jobs.",
    )
    wait.add_argument("ids", nargs="+", type=bounded(int, minimum=1), metavar="ID", help="job ids (from `lab submit`)")
    wait.add_argument("--timeout", metavar="S", type=bounded(float, above=0, maximum=7 * DAY_S), help="give up after this many seconds")
    wait.add_argument("--poll-s", metavar="S", type=bounded(float, above=0, maximum=3600), default=2.0, help="how often to look")
    add_db_option(wait)
    add_format_option(wait, ("table", "csv", "json"))


def _add_measurement_options(parser: argparse.ArgumentParser) -> None:
    """How each job exports and measures: the options of ``mobilebench profile``."""
    add_runtime_options(parser)
    add_iteration_options(parser)
    parser.add_argument("--cpu", metavar="N", type=bounded(int, minimum=0), help="core to pin to (default: the profile's)")
    add_run_condition_options(parser)
    add_model_options(parser)


def run(args: argparse.Namespace) -> None:
    """Run a phone lab: queue profile jobs, drain them with one worker per phone, follow them.

    The queue lives in the results database: a SQLite file for the phones of one host,
    a PostgreSQL database (--db postgresql://...) for several hosts.
    """
    {"submit": _submit, "worker": _worker, "status": _status, "wait": _wait}[args.lab_command](args)


def _submit(args: argparse.Namespace) -> None:
    from mobilebench.lab.queue import JobOptions
    from mobilebench.lab.submit import submit_jobs
    from mobilebench.store import ResultsStore

    checkpoint = str(args.checkpoint.expanduser().resolve()) if args.checkpoint else None
    options = JobOptions(**measurement_options(args), checkpoint=checkpoint, input_size=args.input_size)
    with ResultsStore(args.db) as store:
        jobs = submit_jobs(
            store, args.names, device=args.device, options=options, repeat=args.repeat, devices_file=args.devices_file
        )
    _print_jobs(jobs, args.format, title=f"queued {len(jobs)} job(s) for {args.device}")


def _worker(args: argparse.Namespace) -> None:
    from mobilebench.lab.worker import Worker, WorkerConfig

    config = WorkerConfig(
        device=args.device,
        address=args.address,
        devices_file=args.devices_file,
        lease_s=args.lease_s,
        poll_s=args.poll_s,
        until_empty=args.until_empty,
    )
    with Worker(args.db, config, report=echo_err) as worker:
        summary = worker.run()
    echo_err(f"no jobs left for {args.device}: {summary.done} done, {summary.failed} failed, {summary.lost} taken over")


def _status(args: argparse.Namespace) -> None:
    from mobilebench.lab.queue import JobQueue
    from mobilebench.store import ResultsStore

    with ResultsStore(args.db, create=False) as store:
        jobs = JobQueue(store).jobs(args.ids or None, device=args.device, status=args.status, limit=args.limit)
    _print_jobs(jobs, args.format, title=f"{len(jobs)} job(s), oldest first")


def _wait(args: argparse.Namespace) -> None:
    from mobilebench.errors import MobilebenchError, UsageError
    from mobilebench.lab.queue import JobQueue
    from mobilebench.store import ResultsStore

    wanted = list(dict.fromkeys(args.ids))
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with ResultsStore(args.db, create=False) as store:
        queue = JobQueue(store)
        while True:
            jobs = queue.jobs(wanted)
            missing = sorted(set(wanted) - {j.id for j in jobs})
            if missing:
                raise UsageError(f"no job {', '.join(map(str, missing))} in {store.location}")
            unfinished = [j for j in jobs if j.status in ("queued", "running")]
            if not unfinished or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(args.poll_s)
    _print_jobs(jobs, args.format, title=f"{len(jobs)} job(s)")
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        raise MobilebenchError(f"{len(failed)} of {len(jobs)} job(s) failed: " + "; ".join(f"job {j.id}: {j.error}" for j in failed))
    if unfinished:
        raise MobilebenchError(
            f"timed out after {args.timeout:g} s with {len(unfinished)} job(s) unfinished: "
            + ", ".join(f"{j.id} ({j.status})" for j in unfinished)
        )


def _print_jobs(jobs: list[Any], fmt: str, *, title: str) -> None:
    from mobilebench.cli.console import emit

    rows = [
        {
            "id": j.id,
            "model": j.model,
            "device": j.device_profile,
            "status": j.status,
            "run_id": j.run_id,
            "attempts": j.attempts,
            "error": j.error,
        }
        for j in jobs
    ]
    if fmt == "json":
        print(json.dumps({"jobs": rows}, indent=2))
        return
    emit(JOB_COLUMNS, rows, fmt, title=title)
