"""Unit tests of the session's small pieces: masks, exit statuses, the
live iteration counter, throttling inputs, configuration checks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.bench.session import (
    IterationCounter,
    ProfileConfig,
    describe_exit,
    taskset_mask,
    throttle_snapshots,
)
from mobilebench.device.state import DeviceState
from mobilebench.errors import UsageError


def test_taskset_masks() -> None:
    assert [taskset_mask(c) for c in (0, 4, 7, 9)] == ["1", "10", "80", "200"]


def test_exit_statuses_name_the_signal() -> None:
    assert describe_exit(139) == "killed by SIGSEGV (exit status 139)"
    assert describe_exit(137) == "killed by SIGKILL (exit status 137)"
    assert describe_exit(1) == "exited with status 1"
    assert describe_exit(255) == "exited with status 255"


def test_iteration_counter_handles_lines_split_across_pieces() -> None:
    seen: list[int] = []
    counter = IterationCounter(seen.append)
    for piece in ['{"event":"start"}\n{"event":"itera', 'tion","i":0}\n{"event": "iteration", "i": 1}\n', "I 00:00 log line\n", '{"event":"iteration","i":2}']:
        counter.feed(piece)
    # Two lines completed by one piece: one call; the last line is not finished yet.
    assert seen == [2] and counter.count == 2
    counter.feed("\n")
    assert seen == [2, 3]


def _state(governor: str, freq_khz: int, temp_c: float) -> DeviceState:
    return DeviceState(
        cpu=7, model="Pixel 4", board="msmnile", android_version="13", fingerprint="f", governor=governor,
        cur_freq_khz=freq_khz, max_freq_khz=2_841_600, thermal=[], cpu_temp_c=temp_c, cpu_temp_zone="cpu-1-7-usr",
        free_bytes=None, rooted=False, emulated=True,
    )  # fmt: skip


def test_governor_ramp_up_is_not_throttling_but_a_drop_is() -> None:
    before, after = throttle_snapshots(_state("schedutil", 825_600, 30.0), _state("schedutil", 2_841_600, 45.0))
    assert before == {"freq_khz": 2_841_600, "temp_c": 30.0} and after == {"freq_khz": 2_841_600, "temp_c": 45.0}
    before, after = throttle_snapshots(_state("schedutil", 2_841_600, 30.0), _state("schedutil", 1_900_000, 31.0))
    assert (before["freq_khz"], after["freq_khz"]) == (2_841_600, 1_900_000)
    before, after = throttle_snapshots(_state("performance", 1_900_000, 30.0), _state("performance", 2_841_600, 30.0))
    assert (before["freq_khz"], after["freq_khz"]) == (1_900_000, 2_841_600)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runtime": "tflite"}, "unknown runtime"),
        ({"runtime": "onnx", "dtype": "int8"}, "int8 is available for the executorch runtime only"),
        ({"repeat": 0}, "--repeat must be >= 1"),
        ({"cpu": -1}, "--cpu must be >= 0"),
        ({"iterations": 0}, "iterations must be >= 1"),
        ({"max_iterations": 100}, "--max-iterations only applies with --target-rel-ci"),
        ({"target_rel_ci": 0.01, "iterations": 50, "max_iterations": 10}, "must be >= iterations"),
        ({"runner_timeout_s": 0}, "timeouts must be positive"),
    ],
)
def test_bad_configurations_are_usage_errors(changes: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ProfileConfig(device="host", **changes)


def test_cli_usage_errors_are_one_line(cli, tmp_path: Path) -> None:
    for args, needle in [
        (["profile", "--device", "host"], "name at least one model"),
        (["profile", "skipnet_m", "--device", "nokia"], "unknown device profile 'nokia'"),
        (["profile", "skipnet_m", "--runtime", "onnx", "--dtype", "int8"], "int8 is available"),
        (["profile", "skipnet_m", "--format", "xml"], "--format: invalid choice: 'xml'"),
        (["profile", "skipnet_m", "--iterations", "0"], "--iterations: 0 is below the minimum 1"),
        (["profile", "skipnet_m", "--warmup", "ten"], "--warmup: 'ten' is not an integer"),
        (["profile", "skipnet_m", "--target-rel-ci", "0"], "--target-rel-ci: 0 must be greater than 0"),
        (["profile", "skipnet_m", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ]:
        result = cli(*args, "--db", str(tmp_path / "db.sqlite"))
        assert result.exit_code == 2, (args, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_push_ledger_quick_check(tmp_path: Path) -> None:
    from mobilebench.bench.pushed_files import PushLedger
    from mobilebench.device.base import RemoteStat

    path = tmp_path / "ledger.json"
    stat = RemoteStat("/data/local/tmp/m.pte", 0o100644, 1000, 1_700_000_000)
    ledger = PushLedger("adb-tcp:127.0.0.1:5555|fp", path)
    assert not ledger.is_current(stat.path, "a" * 64, stat)
    ledger.record(stat.path, "a" * 64, stat)
    assert ledger.is_current(stat.path, "a" * 64, stat)
    assert not ledger.is_current(stat.path, "b" * 64, stat)  # other content wanted
    assert not ledger.is_current(stat.path, "a" * 64, replace(stat, mtime=stat.mtime + 1))  # rewritten since
    assert not ledger.is_current(stat.path, "a" * 64, None)  # gone
    assert not PushLedger("adb-tcp:127.0.0.1:5556|fp", path).is_current(stat.path, "a" * 64, stat)  # other device
    path.write_text("{not json")  # a damaged ledger only costs a re-hash
    assert not ledger.is_current(stat.path, "a" * 64, stat)
    ledger.record(stat.path, "a" * 64, stat)
    assert ledger.is_current(stat.path, "a" * 64, stat) and not list(tmp_path.glob(".*.tmp"))
