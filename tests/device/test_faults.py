"""Every injected fault ends in a clear error or a successful retry: never a hang, never a
partial file that looks complete."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mobilebench.errors import MobilebenchError

LONG_OUTPUT = ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


def test_dropped_connection_is_retried_for_idempotent_commands(device, emulator) -> None:
    emulator.faults.drop_after_bytes = 100_000
    result = device.run(LONG_OUTPUT, timeout_s=20, idempotent=True)
    assert result.exit_code == 0 and result.stdout == "x" * 300_000
    assert emulator.faults.drop_after_bytes is None  # it fired


def test_dropped_connection_is_an_error_for_other_commands(device, emulator) -> None:
    emulator.faults.drop_after_bytes = 100_000
    with pytest.raises(MobilebenchError, match=r"connection dropped during command 'sh'.*not retried because it is not safe to repeat"):
        device.run(LONG_OUTPUT, timeout_s=20)
    assert device.run(["echo", "back"], timeout_s=10).stdout == "back\n"  # reconnects


def test_push_survives_a_drop_and_leaves_no_partial_file(device, emulator, tmp_path: Path, tmp_dir_on_phone: Path) -> None:
    local = tmp_path / "model.pte"
    local.write_bytes(os.urandom(3 * 1024 * 1024))
    emulator.faults.drop_after_bytes = 1_500_000  # halfway through the first attempt
    device.push(local, "/data/local/tmp/mobilebench/model.pte")
    assert emulator.faults.drop_after_bytes is None
    assert (tmp_dir_on_phone / "mobilebench" / "model.pte").read_bytes() == local.read_bytes()
    assert leftovers(tmp_dir_on_phone) == ["model.pte"]


def test_failed_push_says_disk_full_and_leaves_nothing(device, emulator, tmp_path: Path, tmp_dir_on_phone: Path) -> None:
    local = tmp_path / "model.pte"
    local.write_bytes(os.urandom(200_000))
    emulator.faults.fail_next_push = "No space left on device"
    with pytest.raises(MobilebenchError, match=r"no space left for /data/local/tmp/mobilebench/model.pte .*free space in /data/local/tmp/mobilebench"):
        device.push(local, "/data/local/tmp/mobilebench/model.pte")
    assert leftovers(tmp_dir_on_phone) == []
    emulator.faults.fail_next_push = "Input/output error"
    with pytest.raises(MobilebenchError, match=r"push of model.pte to .* failed: write failed: Input/output error"):
        device.push_if_changed(local, "/data/local/tmp/mobilebench/model.pte")
    assert leftovers(tmp_dir_on_phone) == []
    assert device.push_if_changed(local, "/data/local/tmp/mobilebench/model.pte") is True  # the fault is gone


def test_hanging_command_times_out_and_the_next_one_works(device, emulator) -> None:
    emulator.faults.hang_next_command = True
    start = time.monotonic()
    with pytest.raises(MobilebenchError, match=r"command 'mobilebench_runner' did not finish within 1 s"):
        device.run(["/data/local/tmp/mobilebench/mobilebench_runner", "--model", "m.pte"], timeout_s=1)
    assert time.monotonic() - start < 5
    assert device.run(["echo", "alive"], timeout_s=10).stdout == "alive\n"


def test_slow_replies_still_work_within_the_timeout_and_fail_past_it(device, emulator) -> None:
    emulator.faults.reply_delay_s = 0.05
    assert device.run(["echo", "slow"], timeout_s=10).stdout == "slow\n"
    emulator.faults.reply_delay_s = 1.0
    with pytest.raises(MobilebenchError, match=r"command 'echo' did not finish within 0.3 s"):
        device.run(["echo", "slower"], timeout_s=0.3)
    emulator.faults.reply_delay_s = 0.0
    assert device.run(["echo", "fast"], timeout_s=10).stdout == "fast\n"


def test_crash_ends_the_program_like_a_segfault(device, emulator) -> None:
    emulator.faults.crash_next_command = True
    start = time.monotonic()
    result = device.run(["sleep", "20"], timeout_s=30)
    assert result.exit_code == 139 and time.monotonic() - start < 10
    assert device.run(["sleep", "0"], timeout_s=10).exit_code == 0  # one-shot


def test_a_named_crash_waits_for_its_program(device, emulator) -> None:
    emulator.faults.crash_next_command = True
    emulator.faults.crash_match = "sleep"
    # Commands that do not run sleep leave the fault armed (a state read, a hash, ...).
    assert device.read_state(7).model == "Pixel 4"
    assert device.run(["sh", "-c", "echo no sleep here"], timeout_s=10).exit_code == 0
    assert emulator.faults.crash_next_command is True
    result = device.run(["sh", "-c", "echo survived; sleep 9"], timeout_s=30)
    assert result.exit_code == 139 and result.stdout.startswith("survived\n") and result.duration_s < 8
    assert emulator.faults.crash_next_command is False  # fired once
    assert device.run(["sleep", "0"], timeout_s=10).exit_code == 0


def test_a_named_hang_stops_its_program_only(device, emulator) -> None:
    emulator.faults.hang_next_command = True
    emulator.faults.hang_match = "sleep"
    assert device.read_state(7).model == "Pixel 4"  # not hung: it runs no sleep
    with pytest.raises(MobilebenchError, match=r"command 'sleep' did not finish within 2 s"):
        device.run(["sleep", "0.5"], timeout_s=2)
    assert emulator.faults.hang_next_command is False
    assert device.run(["sleep", "0"], timeout_s=10).exit_code == 0


def test_faults_find_the_program_behind_its_launchers() -> None:
    from mobilebench.device.emulator.services import program_name

    qemu = ["/usr/bin/qemu-aarch64-static", "-cpu", "cortex-a76", "-0", "lib/ld-linux-aarch64.so.1", "lib/ld-linux-aarch64.so.1"]
    loader = ["--library-path", "lib", "./mobilebench_runner", "--model", "m.pte"]
    assert program_name([*qemu, *loader]) == "mobilebench_runner"
    assert program_name(["lib/ld-linux-aarch64.so.1", *loader]) == "mobilebench_runner"
    assert program_name(["/data/local/tmp/mobilebench/bin/mobilebench_runner", "--version"]) == "mobilebench_runner"
    assert program_name(["sha256sum", "/data/local/tmp/mobilebench/bin/mobilebench_runner"]) == "sha256sum"


def test_hot_zone_is_reported(device, emulator) -> None:
    emulator.faults.hot_zones["cpu-1-7-usr"] = 95.0
    emulator.refresh()
    state = device.read_state(7)
    assert (state.cpu_temp_c, state.cpu_temp_zone) == (95.0, "cpu-1-7-usr")
    emulator.faults.hot_zones.clear()
    emulator.refresh()
    assert device.read_state(7).cpu_temp_c == pytest.approx(30.0)
