"""Phones, workers and jobs for the lab tests.

Workers are real ``mobilebench lab worker`` processes driving phone emulators that run
in the test process (so the runners they start are this process's descendants). The
model is skipnet_m with few iterations, exported once into the session's artifact
cache, where the workers find it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mobilebench.export import ExportOptions, export_model
from mobilebench.zoo.resolve import resolve_model
from tests.processes import wait_for


@pytest.fixture(scope="session")
def skipnet_cached(runner_binary: Path) -> None:
    export_model(resolve_model("skipnet_m"), ExportOptions())


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[[], object]]:
    """``phones()`` starts another emulated Pixel 4 (stopped at the end of the test)."""
    if shutil.which("bwrap") is None:
        pytest.fail("the phone emulator needs bubblewrap (apt-get install bubblewrap)", pytrace=False)
    from mobilebench.device.emulator import PhoneEmulator
    from mobilebench.device.keys import ensure_key_pair

    key = ensure_key_pair().with_name("adbkey.pub")
    started = []

    def start() -> object:
        emulator = PhoneEmulator(tmp_path / f"phone{len(started)}", accepted_keys=[key]).start()
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log: Path  # its stderr: one line per job

    def output(self) -> str:
        return self.log.read_text()

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"worker exited early ({self.proc.returncode}): {self.output()[-3000:]}")
        return True


class Workers:
    """``mobilebench lab worker`` processes; every one still running is killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def start(self, db: str, phone, *options: str) -> WorkerProcess:
        log = self.tmp_path / f"worker{len(self.started)}.log"
        argv = [sys.executable, "-m", "mobilebench.cli.main", "lab", "worker", "--device", "emulator"]
        argv += ["--address", phone.address, "--db", db, "--poll-s", "0.2", *options]
        with log.open("w") as stderr:
            worker = WorkerProcess(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr), log)
        self.started.append(worker)
        return worker

    def wait_ready(self, worker: WorkerProcess, timeout_s: float = 120) -> None:
        """Until the worker has printed its first line (it is about to claim)."""
        wait_for(lambda: worker.alive() and "worker " in worker.output(), timeout_s, "the worker to start")

    def finish(self, worker: WorkerProcess, timeout_s: float = 300) -> str:
        """Wait for a worker to exit on its own; its stderr."""
        try:
            worker.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
            pytest.fail(f"worker did not finish in {timeout_s} s: {worker.output()[-3000:]}")
        return worker.output()

    def terminate(self, worker: WorkerProcess, timeout_s: float = 60) -> int:
        """SIGTERM, as CI sends it; the exit status."""
        worker.proc.send_signal(signal.SIGTERM)
        return self.finish(worker, timeout_s) and worker.proc.returncode

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def submitted_ids(result) -> list[int]:
    assert result.exit_code == 0, result.stderr
    return [job["id"] for job in json.loads(result.stdout)["jobs"]]
