"""Waiting on processes in end-to-end tests: polling a condition, finding runners."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mobilebench.device.emulator.physics import descendants


def wait_for(condition: Callable[[], object], timeout_s: float, what: str):
    """Poll ``condition`` until it is truthy and return its value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def runners_below(pid: int | None = None) -> list[int]:
    """Native runner processes below ``pid`` (default: this test process; the emulators
    it starts run the runners)."""
    found = []
    for child, _parent in descendants(os.getpid() if pid is None else pid):
        try:
            comm = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("mobilebench_run"):  # comm is cut at 15 characters
            found.append(child)
    return found
