"""adb-shell against the phone emulator: auth, commands, files, several streams at once."""

from __future__ import annotations

import hashlib
import os
import platform
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from adb_shell.auth.keygen import keygen

from mobilebench import paths
from mobilebench.device import connect
from mobilebench.device.state import normalize_abi
from mobilebench.errors import MobilebenchError

from .conftest import emulator_profile, plain_adb_shell


def test_plain_adb_shell_authenticates_runs_lists_and_stats(emulator, adb_key: Path) -> None:
    adb = plain_adb_shell(emulator, adb_key)
    try:
        assert adb.available
        assert adb.shell("getprop ro.product.model").strip() == "Pixel 4"
        assert adb.shell("getprop ro.mobilebench.emulated").strip() == "1"
        assert "[ro.board.platform]: [msmnile]" in adb.shell("getprop").splitlines()
        assert adb.shell("getprop no.such.prop fallback").strip() == "fallback"
        assert adb.shell("id -u").strip() == "2000"  # adbd's shell user, not root
        assert adb.exec_out("echo out; echo err >&2").strip() == "out"  # exec: is stdout only
        adb.shell("mkdir -p /data/local/tmp/d && echo hi > /data/local/tmp/d/a.txt")
        names = {f.filename.decode() for f in adb.list("/data/local/tmp/d")}
        assert names == {".", "..", "a.txt"}
        mode, size, _ = adb.stat("/data/local/tmp/d/a.txt")
        assert stat.S_ISREG(mode) and size == 3
        assert adb.stat("/data/local/tmp/missing") == (0, 0, 0)
        mode, _, _ = adb.stat("/sys")  # a directory that exists only as a mount parent
        assert stat.S_ISDIR(mode)
        assert "thermal" in {f.filename.decode() for f in adb.list("/sys/class")}
        assert adb.shell("cat /sys/class/thermal/thermal_zone0/type").strip() == "cpu-0-0-usr"
    finally:
        adb.close()


def test_commands_report_real_exit_statuses(device) -> None:
    result = device.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout_s=10)
    assert (result.stdout, result.exit_code) == ("out\nerr\n", 3)
    assert device.run(["true"], timeout_s=10).exit_code == 0
    assert device.run(["no-such-tool"], timeout_s=10).exit_code == 127
    assert device.run(["sh", "-c", "kill -SEGV $$"], timeout_s=10).exit_code == 139
    result = device.run(["sh", "-c", 'echo "$MB_X" $(pwd)'], timeout_s=10, env={"MB_X": "a b"}, cwd="/data/local/tmp")
    assert result.stdout == "a b /data/local/tmp\n" and result.duration_s > 0
    for tool in ("sh", "getprop", "taskset", "sha256sum", "md5sum", "cat", "ls", "mv", "rm", "mkdir", "chmod", "df", "id"):
        assert device.run(["sh", "-c", f"command -v {tool}"], timeout_s=10).exit_code == 0, tool


def test_shell_injection_leaves_no_file(device, tmp_dir_on_phone: Path, tmp_path: Path) -> None:
    name = "a; touch /data/local/tmp/pwned"
    device.run(["ls", f"/data/local/tmp/{name}"], timeout_s=10)
    device.run(["echo", "$(touch /data/local/tmp/pwned)", "`touch /data/local/tmp/pwned`"], timeout_s=10, cwd="/data/local/tmp")
    device.run(["true"], timeout_s=10, env={"X": "$(touch /data/local/tmp/pwned)"})
    local = tmp_path / "model.pte"
    local.write_bytes(b"weights")
    weird = f"/data/local/tmp/mobilebench/{name}.pte"  # "/" makes literal subdirectories
    device.push(local, weird)
    literal = tmp_dir_on_phone / "mobilebench" / "a; touch " / "data" / "local" / "tmp" / "pwned.pte"
    assert literal.read_bytes() == b"weights"
    assert device.push_if_changed(local, weird) is False
    assert device.stat(weird).size == 7
    device.pull(weird, tmp_path / "back.pte")
    device.remove(weird)
    assert not literal.exists()
    assert not (tmp_dir_on_phone / "pwned").exists()
    assert [p.name for p in tmp_dir_on_phone.rglob("*") if p.is_file()] == []  # no temp files either


@pytest.mark.slow
def test_push_and_pull_50_mb_intact(device, tmp_dir_on_phone: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(50 * 1024 * 1024))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    seen: list[tuple[int, int]] = []
    remote = "/data/local/tmp/mobilebench/big.bin"

    assert device.push_if_changed(big, remote, mode=0o600, progress=lambda d, t: seen.append((d, t))) is True
    assert seen[0] == (0, big.stat().st_size) and seen[-1] == (big.stat().st_size,) * 2
    on_phone = tmp_dir_on_phone / "mobilebench" / "big.bin"
    assert hashlib.sha256(on_phone.read_bytes()).hexdigest() == digest
    assert stat.S_IMODE(on_phone.stat().st_mode) == 0o600
    assert [p.name for p in on_phone.parent.iterdir()] == ["big.bin"]  # no temp files left

    # Identical content: not pushed again; other permissions: only chmod-ed.
    assert device.push_if_changed(big, remote, mode=0o644) is False
    assert stat.S_IMODE(on_phone.stat().st_mode) == 0o644
    assert device.stat(remote).size == big.stat().st_size

    back = tmp_path / "back.bin"
    device.pull(remote, back)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest

    big.write_bytes(b"changed")  # different content is pushed again
    assert device.push_if_changed(big, remote) is True
    assert on_phone.read_bytes() == b"changed"


def test_pull_and_stat_of_missing_files(device, tmp_path: Path) -> None:
    assert device.stat("/data/local/tmp/nothing") is None
    out = tmp_path / "out"
    with pytest.raises(MobilebenchError, match="cannot pull /data/local/tmp/nothing: no such file"):
        device.pull("/data/local/tmp/nothing", out / "x")
    assert not out.exists()  # nothing written locally either
    with pytest.raises(MobilebenchError, match="device paths must be absolute"):
        device.stat("relative/path")


def test_pushes_to_read_only_places_fail_clearly(device, tmp_path: Path) -> None:
    local = tmp_path / "f"
    local.write_text("x")
    with pytest.raises(MobilebenchError, match="Read-only file system"):
        device.push(local, "/system/bin/f")


def test_state_is_read_in_one_round_trip(device) -> None:
    state = device.read_state(7)
    assert (state.model, state.board, state.android_version) == ("Pixel 4", "msmnile", "13")
    assert "EMULATED" in state.fingerprint and state.emulated is True
    assert state.governor == "schedutil" and state.max_freq_khz == 2_841_600
    assert len(state.thermal) == 16 and state.cpu_temp_c == pytest.approx(30.0)
    assert state.free_bytes > 0 and state.rooted is False and state.unavailable == []
    assert state.identity_known and state.abi == normalize_abi(platform.machine())  # the default emulator runs host code
    assert device.read_state(0).max_freq_khz == 1_785_600  # little core


def test_several_streams_on_one_connection(emulator, adb_key: Path) -> None:
    adb = plain_adb_shell(emulator, adb_key)
    try:
        slow = adb.streaming_shell("echo start; sleep 1; echo end", read_timeout_s=10)
        assert next(slow) == "start\n"  # stream 1 stays open...
        assert adb.shell("echo other").strip() == "other"  # ...while stream 2 runs
        assert stat.S_ISDIR(adb.stat("/data/local/tmp")[0])  # and a sync stream
        assert "".join(slow) == "end\n"
    finally:
        adb.close()


def test_several_connections_at_once(emulator) -> None:
    # adb-shell 0.4.4 must not share one connection between threads (its packet store
    # drops a CLSE that another thread reads first), so each thread connects itself.
    results: dict[int, str] = {}

    def work(i: int) -> None:
        with connect(emulator_profile(emulator)) as dev:
            results[i] = dev.run(["sh", "-c", f"sleep 1; echo {i}"], timeout_s=20).stdout.strip()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {0: "0", 1: "1", 2: "2"}
    assert time.monotonic() - start < 2.9  # the one-second commands overlapped


def test_unknown_key_is_refused(emulator, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    keygen(str(stranger))
    with pytest.raises(MobilebenchError, match=r"did not accept this computer's ADB key .*stranger\.pub"):
        connect(emulator_profile(emulator), key_path=stranger, timeout_s=5)


def test_default_accepted_key_is_the_config_key_even_if_created_later(phone_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from mobilebench.device.emulator import PhoneEmulator

    monkeypatch.setenv("MOBILEBENCH_CONFIG_DIR", str(tmp_path / "fresh-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.android/adbkey.pub either
    with PhoneEmulator(phone_dir) as phone:  # no key exists yet
        with connect(emulator_profile(phone)) as dev:  # creates <config>/adbkey on first use
            assert dev.run(["echo", "in"], timeout_s=10).stdout == "in\n"
    assert (tmp_path / "fresh-config" / "adbkey.pub").is_file()


def test_auth_none_lets_anyone_in(phone_dir: Path, tmp_path: Path) -> None:
    from mobilebench.device.emulator import PhoneEmulator

    stranger = tmp_path / "stranger"
    keygen(str(stranger))
    with PhoneEmulator(phone_dir, auth="none") as phone:
        with connect(emulator_profile(phone), key_path=stranger) as dev:
            assert dev.run(["echo", "ok"], timeout_s=10).stdout == "ok\n"


def test_unreachable_device_is_a_clear_error(emulator) -> None:
    port = emulator.port
    emulator.stop()
    profile = replace(emulator_profile(emulator), address=f"127.0.0.1:{port}")
    with pytest.raises(MobilebenchError, match=rf"cannot reach device 'emulator' at 127.0.0.1:{port}: connection refused"):
        connect(profile, timeout_s=2)


RUNNER = paths.project_root() / "android_app" / "build" / "host" / "mobilebench_runner"


@pytest.mark.skipif(not RUNNER.is_file(), reason="the host runner is not built (make runner)")
def test_host_runner_executes_on_the_emulator(device) -> None:
    remote = "/data/local/tmp/mobilebench/mobilebench_runner"
    assert device.push_if_changed(RUNNER, remote, mode=0o755) is True
    result = device.run(["taskset", "80", remote, "--version"], timeout_s=30)  # libraries via its rpath
    assert result.exit_code == 0, result.stdout
    assert '"runner":"mobilebench_runner"' in result.stdout
    assert device.run([remote, "--model", "/data/local/tmp/missing.pte"], timeout_s=30).exit_code != 0
