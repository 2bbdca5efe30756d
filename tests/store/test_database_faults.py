"""What ``mobilebench profile`` says when its SQLite database cannot be written, and
what it leaves there: a database locked by another writer past the busy timeout, a disk
that is full before the run or fills during it. Each case runs the real CLI in a
subprocess on the host device and checks the exit status, the one line on stderr and
the database afterwards: a run is never ``ok`` without its samples; it is ``failed``
with the reason, not inserted, or (when not even that could be written) left
``running`` for the next profile to mark ``aborted``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilebench.export import ExportOptions, export_model
from mobilebench.store import ResultsStore, process_alive
from mobilebench.zoo.resolve import resolve_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def skipnet_cached(runner_binary: Path) -> None:
    """skipnet_m in the session's artifact cache, so the profiles below do not export."""
    export_model(resolve_model("skipnet_m"), ExportOptions())


def profile(db: str, iterations: int) -> subprocess.Popen:
    argv = [sys.executable, "-m", "mobilebench.cli.main", "profile", "skipnet_m", "--device", "host"]
    argv += ["--warmup", "0", "--iterations", str(iterations), "--db", db, "--format", "json"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout_s: float = 300) -> tuple[int, str]:
    """Exit status and stderr of a profile that must end on its own."""
    try:
        _, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def wait_for_running_row(db: Path, proc: subprocess.Popen) -> int:
    """The id of the profile's ``running`` row, once it is committed (read as a client would)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"profile ended early (exit {proc.returncode}): {proc.stderr.read()[-2000:]}")
        if db.exists():
            conn = sqlite3.connect(db)
            try:
                row = conn.execute("SELECT id FROM runs WHERE status = 'running'").fetchone()
            except sqlite3.OperationalError:  # the schema is being created
                row = None
            finally:
                conn.close()
            if row:
                return row[0]
        time.sleep(0.02)
    pytest.fail("the profile never started its run")


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def hold_write_lock(db: Path) -> sqlite3.Connection:
    """Another writer in the middle of a transaction (a client holding BEGIN IMMEDIATE)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_locked_database_at_start_inserts_nothing(tmp_path, skipnet_cached):
    db = tmp_path / "results.sqlite"
    ResultsStore(db).close()
    holder = hold_write_lock(db)
    try:
        code, err = finish(profile(f"sqlite:///{db}?timeout=1", iterations=3))
    finally:
        holder.close()
    assert code == 1
    assert one_error_line(err) == (
        f"error: results database {db} stayed locked by another writer for 1 s; "
        "retry when the other mobilebench (or sqlite3) process is done with it"
    )
    with ResultsStore(db, create=False) as store:
        assert store.runs() == []


def test_locked_database_at_completion_leaves_a_run_the_next_profile_aborts(tmp_path, skipnet_cached):
    db = tmp_path / "results.sqlite"
    proc = profile(f"sqlite:///{db}?timeout=1", iterations=150)
    run_id = wait_for_running_row(db, proc)
    holder = hold_write_lock(db)  # while the runner measures; held until the profile gives up
    try:
        code, err = finish(proc)
    finally:
        holder.close()
    assert code == 1
    line = one_error_line(err)
    assert line.startswith(f"error: skipnet_m on host (run {run_id}, left running, the next profile marks it aborted): ")
    assert line.endswith(f"results database {db} stayed locked by another writer for 1 s; "
                         "retry when the other mobilebench (or sqlite3) process is done with it")  # fmt: skip
    with ResultsStore(db, create=False) as store:
        run = store.get_run(run_id)
        assert run.status == "running" and run.stats is None and store.samples(run_id) == []
        assert process_alive(run.host, run.pid) is False  # what `mobilebench runs` shows
    code, err = finish(profile(str(db), iterations=2))
    assert code == 0, err
    assert "marked 1 run(s) of killed profile processes as aborted" in err
    with ResultsStore(db, create=False) as store:
        assert [r.status for r in sorted(store.runs(), key=lambda r: r.id)] == ["aborted", "ok"]


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own, to fill up."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({mounted.stderr.strip()}): needs root with CAP_SYS_ADMIN")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; returns the file to delete to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def test_full_disk_before_the_run_inserts_nothing(small_disk, skipnet_cached):
    db = small_disk / "results.sqlite"
    ResultsStore(db).close()
    filler = fill(small_disk)
    code, err = finish(profile(str(db), iterations=3))
    assert code == 1
    assert one_error_line(err) == (
        f"error: the disk holding results database {db} is full (0 bytes free): free some space and run again"
    )
    filler.unlink()  # even a reader needs a few pages (the WAL index)
    with ResultsStore(db, create=False) as store:
        assert store.runs() == []


def test_disk_filling_during_the_run_never_leaves_a_result(small_disk, skipnet_cached):
    db = small_disk / "results.sqlite"
    proc = profile(str(db), iterations=150)
    run_id = wait_for_running_row(db, proc)
    filler = fill(small_disk)  # while the runner measures
    code, err = finish(proc)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith(f"error: skipnet_m on host (run {run_id}, left running, the next profile marks it aborted): ")
    assert line.endswith(f"the disk holding results database {db} is full (0 bytes free): free some space and run again")
    filler.unlink()
    with ResultsStore(db, create=False) as store:
        run = store.get_run(run_id)
        assert run.status == "running" and run.stats is None and store.samples(run_id) == []
        assert store.mark_stale_runs_aborted() == 1
        assert store.get_run(run_id).status == "aborted"
