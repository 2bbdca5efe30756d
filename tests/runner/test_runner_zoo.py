"""The runner on exported zoo models: output parity with ExecuTorch's Python runtime, and
what --threads really does to the process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ZOO_CASES = [("skipnet_m", "fp32"), ("mobilenet_v3_large", "fp32"), ("skipnet_m", "int8")]
THREAD_PROBE_WARMUP, THREAD_PROBE_ITERATIONS = 2, 40


def python_runtime_output(pte: Path, x: Any) -> np.ndarray:
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(pte).load_method("forward")
    return method.execute((x,))[0].numpy()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dtype"), ZOO_CASES, ids=[f"{n}-{d}" for n, d in ZOO_CASES])
def test_output_matches_the_python_runtime(
    run_runner: Callable[..., Any], zoo_pte: Callable[..., Any], tmp_path: Path, name: str, dtype: str
) -> None:
    from mobilebench.export import fixed_input, write_fixed_input

    artifact = zoo_pte(name, dtype)
    x = fixed_input(artifact.input_shape, seed=0)
    expected = python_runtime_output(artifact.path, x)

    # The same input twice over: generated in the runner (--seed 0) and read from a file.
    input_file = write_fixed_input(tmp_path / "input.bin", artifact.input_shape, seed=0)
    for source in (["--seed", "0"], ["--input", str(input_file)]):
        out = tmp_path / "output.bin"
        result = run_runner("--model", artifact.path, *source, "--warmup", "1", "--iterations", "3", "--dump-output", out)
        assert result.returncode == 0, result.describe()
        assert [e["event"] for e in result.events] == ["start", "load"] + ["iteration"] * 4 + ["output", "summary"]
        load = result.one("load")
        assert load["backends"] == ["XnnpackBackend"]
        assert load["inputs"][0]["shape"] == list(artifact.input_shape)
        output = result.one("output")
        assert output["shape"] == list(expected.shape) == [1, 1000]
        got = np.fromfile(out, dtype="<f4").reshape(output["shape"])
        # Same runtime, same kernels, same input: equal up to the thread split of a few
        # reductions (the Python runtime may use more threads).
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(scale, 1.0))
        assert int(got.argmax()) == int(expected.argmax())
        summary = result.one("summary")
        assert summary["iterations"] == 3 and summary["median_ms"] > 0


def _thread_counts_while_running(runner_path: Path, pte: Path, threads: int) -> tuple[list[int], float, float]:
    """Runs the runner (a few warm-up + 40 timed runs) and reads /proc/PID/status (Threads) as
    it reports timed iterations; returns the counts, and the process's CPU seconds and
    the wall seconds between the first and last reading (CPU time from /proc/PID/stat)."""
    argv = [str(runner_path), "--model", str(pte), "--threads", str(threads),
            "--warmup", str(THREAD_PROBE_WARMUP), "--iterations", str(THREAD_PROBE_ITERATIONS)]  # fmt: skip
    last_probe = THREAD_PROBE_WARMUP + THREAD_PROBE_ITERATIONS - 2
    counts: list[int] = []
    cpu_marks: list[tuple[float, float]] = []
    ticks = os.sysconf("SC_CLK_TCK")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            # Timed runs only, and not the last two: after the last one the process exits
            # and a zombie's /proc entry would show one thread whatever it ran with.
            if event["event"] == "iteration" and not event["warmup"] and event["i"] < last_probe:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                counts.append(int(next(v for k, v in (ln.split(":", 1) for ln in status.splitlines()) if k == "Threads")))
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu_marks.append(((int(fields[11]) + int(fields[12])) / ticks, time.monotonic()))
        assert proc.wait(timeout=120) == 0
    cpu_s = cpu_marks[-1][0] - cpu_marks[0][0]
    wall_s = cpu_marks[-1][1] - cpu_marks[0][1]
    return counts, cpu_s, wall_s


@pytest.mark.slow
def test_threads_1_runs_one_thread_and_threads_2_two(
    runner_path: Path, run_runner: Callable[..., Any], zoo_pte: Callable[..., Any]
) -> None:
    pte = zoo_pte("skipnet_m", "fp32").path
    counts, cpu_s, wall_s = _thread_counts_while_running(runner_path, pte, threads=1)
    assert len(counts) == THREAD_PROBE_ITERATIONS - 2
    assert set(counts) == {1}, counts  # the main thread only: the pool has no workers
    # One thread cannot use more than one core's time (10 ms tick granularity).
    assert cpu_s <= wall_s + 0.03, (cpu_s, wall_s)

    counts, _, _ = _thread_counts_while_running(runner_path, pte, threads=2)
    assert set(counts) == {2}, counts  # main thread + one pool worker

    start = run_runner("--model", pte, "--threads", "2", "--warmup", "0", "--iterations", "1").one("start")
    assert (start["threads"], start["threadpool_threads"]) == (2, 2)
