"""End to end on this computer (the ``host`` profile): the same native runner, pinned
with taskset, and the ONNX path through the host ONNX runner (``ort_python``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from mobilebench import paths
from mobilebench.bench.session import ProfileConfig, ProfileSession
from mobilebench.store import ResultsStore

pytestmark = pytest.mark.slow


def test_executorch_fp32_on_host(store, skipnet, skipnet_pte, runner_binary) -> None:
    config = ProfileConfig(device="host", warmup=2, iterations=6)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    record = store.get_run(outcome.run_id)
    m, s = record.meta, record.stats
    assert record.status == "ok" and s is not None and s.n == 6
    assert (m.device_profile, m.emulated, m.cpu, m.threads, m.runtime, m.dtype) == ("host", False, 0, 1, "executorch", "fp32")
    assert (m.runner_name, m.backend) == ("mobilebench_runner", "xnnpack")
    assert m.runner_version and m.runtime_version
    assert m.device_model and m.fingerprint and m.fingerprint.startswith("Linux")
    assert len(store.samples(outcome.run_id)) == 8
    # Memory and loads: the process holds at least the program's weights; both loads took time.
    assert m.peak_rss_bytes > skipnet_pte.path.stat().st_size
    assert m.planned_memory_bytes > 0 and s.load_ms > 0 and s.warm_load_ms > 0
    # The runner was copied into the host work dir and ran from there, pinned to cpu0.
    workdir = paths.cache_dir() / "host"
    copy = workdir / "models" / f"{skipnet_pte.sha256[:16]}.pte"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == skipnet_pte.sha256
    assert os.access(workdir / "bin" / "mobilebench_runner", os.X_OK)


def test_executorch_int8_on_host(store, skipnet, skipnet_int8_pte, runner_binary) -> None:
    config = ProfileConfig(device="host", dtype="int8", warmup=2, iterations=6)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    m = outcome.record.meta
    assert outcome.record.status == "ok" and (m.dtype, m.artifact_sha256) == ("int8", skipnet_int8_pte.sha256)
    assert outcome.record.stats.n == 6


def test_onnx_on_host_through_the_cli(cli, skipnet_onnx, tmp_path: Path) -> None:
    db = tmp_path / "onnx.sqlite"
    args = ["profile", "skipnet_m", "--device", "host", "--runtime", "onnx", "--warmup", "2", "--iterations", "6", "--db", str(db)]
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (printed,) = json.loads(result.stdout)
    assert printed["status"] == "ok" and printed["id"] == 1
    assert (printed["runtime"], printed["backend"], printed["runner_name"]) == ("onnx", "cpu", "ort_python")
    assert printed["artifact_sha256"] == skipnet_onnx.sha256 and printed["n"] == 6
    assert printed["runtime_version"]  # onnxruntime's version, from the runner
    assert printed["peak_rss_bytes"] > skipnet_onnx.path.stat().st_size
    assert printed["load_ms"] > 0 and printed["warm_load_ms"] > 0
    with ResultsStore(db, create=False) as store:
        assert len(store.samples(printed["id"])) == 8

    # The table format: one titled table for the model, warnings on stderr only; piped,
    # no progress is drawn (it is transient: a log would get nothing from it).
    table = cli(*args)
    assert table.exit_code == 0, table.stderr
    assert "skipnet_m on host: onnx fp32, cpu0, ort_python" in table.stdout
    assert "median ms" in table.stdout and "peak RSS MB" in table.stdout and "Traceback" not in table.stderr
    assert "\x1b[" not in table.stderr


def test_progress_is_drawn_on_a_terminal(cli, terminal, skipnet_onnx, tmp_path: Path) -> None:
    terminal()
    args = ["profile", "skipnet_m", "--device", "host", "--runtime", "onnx", "--warmup", "2", "--iterations", "6"]
    result = cli(*args, "--db", str(tmp_path / "tty.sqlite"))
    assert result.exit_code == 0, result.stderr
    assert "median ms" in result.stdout
    # rich's live display: cursor control, the stages and the iteration bar with its count.
    assert "\x1b[" in result.stderr
    assert "running ort_python on cpu0" in result.stderr and "iterations" in result.stderr and "8/8" in result.stderr


def test_adaptive_iterations_stop_at_the_ci_target_or_the_cap(store, skipnet, skipnet_pte) -> None:
    config = ProfileConfig(device="host", warmup=1, iterations=10, target_rel_ci=0.02, max_iterations=40)
    (outcome,) = ProfileSession(config, store).run([skipnet])
    s = outcome.record.stats
    assert 10 <= s.n <= 40 and len(store.samples(outcome.run_id)) == s.n + 1
    half_width = max(s.median_ms - s.ci_low_ms, s.ci_high_ms - s.median_ms)
    assert s.n == 40 or half_width <= 0.02 * s.median_ms
    assert outcome.record.meta.extra["target_rel_ci"] == 0.02


def test_names_with_terminal_control_sequences_are_printed_escaped(cli, tmp_path: Path, skipnet_pte) -> None:
    """A file named to set the terminal's title and clear the screen is shown escaped by
    `profile` and, from the database, by `runs`; it is stored as it is."""
    hostile = tmp_path / "net\x1b]0;owned\x07\x1b[2J.pte"
    hostile.write_bytes(skipnet_pte.path.read_bytes())
    db = tmp_path / "escaped.sqlite"
    done = cli("profile", hostile, "--device", "host", "--warmup", "1", "--iterations", "3", "--db", db)
    assert done.exit_code == 0, done.stderr
    listed = cli("runs", "--db", db)
    as_csv = cli("runs", "--db", db, "--format", "csv")
    for result in (done, listed, as_csv):
        assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout + result.stderr
    assert "net\\x1b]0;owned\\x07\\x1b[2J" in done.stdout and "net\\x1b]0;owned" in listed.stdout
    with ResultsStore(db, create=False) as store:
        (run,) = store.runs()
        assert run.meta.model == "net\x1b]0;owned\x07\x1b[2J"
