"""A ``mobilebench profile`` stopped while the runner runs on the phone.

SIGTERM (what CI and ``timeout`` send) is handled like Ctrl-C: the run is stored as
failed ("terminated") before the process exits, with one line on stderr. ``kill -9``
cannot be handled: the database keeps one consistent ``running`` row and no samples,
the next profile marks it ``aborted``, and the phone does not keep running the orphaned
benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mobilebench.store import ResultsStore
from tests.processes import runners_below, wait_for

pytestmark = pytest.mark.slow


def test_sigkill_mid_run_leaves_a_running_row_that_is_then_aborted(cli, phone, tmp_path: Path, skipnet_pte) -> None:
    db = tmp_path / "killed.sqlite"
    argv = [
        sys.executable, "-m", "mobilebench.cli.main", "profile", "skipnet_m",
        "--device", "emulator", "--address", phone.address,
        "--warmup", "0", "--iterations", "100000", "--db", str(db), "--format", "json",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:

        def runner_started() -> list[int]:
            if proc.poll() is not None:
                pytest.fail(f"profile ended early (exit {proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
            # The emulator (in this process) runs the runner for the profile subprocess.
            return runners_below(os.getpid())

        runner = wait_for(runner_started, 120, "the runner to start on the phone")
        time.sleep(0.3)  # let it measure a few iterations
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with ResultsStore(db, create=False) as store:
        (run,) = store.runs()
        assert run.status == "running" and run.finished_at is None and run.stats is None
        assert run.pid == proc.pid and run.meta.model == "skipnet_m"
        assert store.samples(run.id) == []
    # The connection died with the process: the emulator ends the orphaned runner.
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in runner), 10, "the orphaned runner to end")

    # Listed as what it is: a running row whose process is gone.
    listed = cli("runs", "--db", str(db))
    assert "running (process gone)" in listed.stdout, listed.stdout

    # The next profile marks it aborted, then measures as usual.
    result = cli("profile", "skipnet_m", "--device", "emulator", "--address", phone.address, "--warmup", "1", "--iterations", "3", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert "marked 1 run(s) of killed profile processes as aborted" in result.stderr
    with ResultsStore(db, create=False) as store:
        aborted, ok = sorted(store.runs(), key=lambda r: r.id)
        assert aborted.id == run.id and aborted.status == "aborted" and f"process {proc.pid}" in aborted.error
        assert ok.status == "ok"
        assert store.mark_stale_runs_aborted() == 0


def test_sigterm_mid_run_stores_the_run_as_terminated(phone, tmp_path: Path, skipnet_pte) -> None:
    db = tmp_path / "terminated.sqlite"
    argv = [
        sys.executable, "-m", "mobilebench.cli.main", "profile", "skipnet_m",
        "--device", "emulator", "--address", phone.address,
        "--warmup", "0", "--iterations", "100000", "--db", str(db),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: proc.poll() is not None or runners_below(os.getpid()), 120, "the runner to start on the phone")
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines() == ["error: terminated (SIGTERM)"], stderr
    with ResultsStore(db, create=False) as store:
        (run,) = store.runs()
        assert run.status == "failed" and run.error == "terminated (SIGTERM)" and run.finished_at is not None
        assert store.samples(run.id) == []
    wait_for(lambda: not runners_below(os.getpid()), 10, "the runner to end with the connection")
