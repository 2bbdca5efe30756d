"""Memory and load of every run: peak resident set, planned memory, a first and a second load."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mobilebench.bench.runners import get_adapter

# Printed with six decimals: the parts of a load add up to its total within that.
PRINT_TOL_MS = 2e-6


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status, e.g. VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["skipnet_m", "mobilenet_v3_large"])
def test_memory_and_both_loads_are_reported_for_a_zoo_model(
    run_runner: Callable[..., Any], zoo_pte: Callable[..., Any], name: str
) -> None:
    artifact = zoo_pte(name, "fp32")
    result = run_runner("--model", artifact.path, "--warmup", "1", "--iterations", "3")
    assert result.returncode == 0, result.describe()
    load = result.one("load")
    for prefix in ("", "warm_"):
        assert load[f"{prefix}ms"] > 0
        parts = load[f"{prefix}program_ms"] + load[f"{prefix}method_ms"]
        assert load[f"{prefix}ms"] == pytest.approx(parts, abs=PRINT_TOL_MS)
    # Planned buffers hold at least the input (1x3x224x224 float32) and the 1000 logits.
    assert load["planned_memory_bytes"] == sum(load["planned_buffer_bytes"])
    assert load["planned_memory_bytes"] >= 4 * (3 * 224 * 224 + 1000)
    # The process holds the weights (packed by XNNPACK) and the runtime: more than the file.
    pte_bytes = artifact.path.stat().st_size
    peak = result.one("summary")["peak_rss_bytes"]
    assert pte_bytes < peak < 2 * 2**30, (pte_bytes, peak)

    out = get_adapter("mobilebench_runner").parse("\n".join(json.dumps(e) for e in result.events))
    assert (out.load_ms, out.warm_load_ms) == (load["ms"], load["warm_ms"])
    assert (out.peak_rss_bytes, out.planned_memory_bytes) == (peak, load["planned_memory_bytes"])
    stats = out.stats()
    assert (stats.load_ms, stats.warm_load_ms) == (load["ms"], load["warm_ms"])


def test_peak_rss_is_the_kernels_high_water_mark(runner_path: Path, tiny_pte: Path) -> None:
    """The reported figure is VmHWM in bytes: at least what /proc showed mid-run, and not
    more than what a few further iterations could add.

    The runner prints far more lines than the pipe holds (64 KiB, about a thousand), so
    when line 100 is read it is still running, blocked on the pipe at worst: a runner
    that had already exited would leave a zombie without a VmHWM to read."""
    argv = [str(runner_path), "--model", str(tiny_pte), "--warmup", "2", "--iterations", "5000"]
    seen_kib = 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        events = []
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "iteration" and events[-1]["i"] == 100:
                seen_kib = status_kib(proc.pid, "VmHWM")
        assert proc.wait(timeout=60) == 0
    peak = events[-1]["peak_rss_bytes"]
    assert seen_kib > 0
    assert seen_kib * 1024 <= peak <= seen_kib * 1024 + 4 * 2**20, (seen_kib, peak)
