"""Quoting, the exit-status sentinel and the state parser, run against a real shell."""

from __future__ import annotations

import platform
import subprocess

import pytest

from mobilebench.device.shell import build_command, quote_argv, split_status, wrap_with_status
from mobilebench.device.state import (
    ThermalReading,
    local_snapshot_lines,
    local_state_lines,
    normalize_abi,
    parse_state,
    pick_cpu_zone,
    snapshot_script,
    state_script,
)
from mobilebench.errors import UsageError


def sh(script: str) -> bytes:
    return subprocess.run(["sh", "-c", script], capture_output=True, timeout=10).stdout


def test_wrapped_commands_report_their_real_status_and_exact_output(tmp_path) -> None:
    for script, expected_out, expected_code in [
        (build_command(["printf", "%s", "no newline"]), b"no newline", 0),
        (build_command(["sh", "-c", "echo out; echo err >&2; exit 7"]), b"out\nerr\n", 7),
        (build_command(["sh", "-c", "kill -SEGV $$"]), None, 139),  # the shell says "Segmentation fault"
        (build_command(["definitely-not-a-command-xyz"]), None, 127),
        (build_command(["cat"]), b"", 0),  # stdin is /dev/null: no hang
    ]:
        wrapped, sentinel = wrap_with_status(script)
        assert sentinel not in wrapped  # the full sentinel text only appears in output
        out, code = split_status(sh(wrapped), sentinel)
        assert code == expected_code, script
        if expected_out is not None:
            assert out == expected_out


def test_nothing_user_given_is_interpreted(tmp_path) -> None:
    victim = tmp_path / "pwned"
    nasty = [f"a; touch {victim}", f"$(touch {victim})", f"`touch {victim}`", f"x' ; touch {victim}; '", "*"]
    script = build_command(["printf", "%s\\n", *nasty], env={"MB_X": f"$(touch {victim})"}, cwd=str(tmp_path))
    wrapped, sentinel = wrap_with_status(script)
    out, code = split_status(sh(wrapped), sentinel)
    assert code == 0 and not victim.exists()
    assert out.decode().splitlines() == nasty


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        quote_argv("ls -la")  # a string, not a list
    with pytest.raises(UsageError):
        quote_argv([])
    with pytest.raises(UsageError):
        quote_argv(["a\0b"])
    with pytest.raises(UsageError, match="environment variable name"):
        build_command(["true"], env={"A;B": "1"})


def test_missing_sentinel_is_reported_as_none() -> None:
    assert split_status(b"partial output", "__MB_RC_x__") is None
    assert split_status(b"out\n__MB_RC_x__:3\n", "__MB_RC_x__") == (b"out\n", 3)
    assert split_status(b"no newline__MB_RC_x__:0\r\n", "__MB_RC_x__") == (b"no newline", 0)


PIXEL_LIKE = """\
prop.ro.product.model=Pixel 4
prop.ro.board.platform=msmnile
prop.ro.hardware=flame
prop.ro.build.version.release=13
prop.ro.build.fingerprint=google/flame/flame:13/TQ3A/1:user/release-keys
prop.ro.mobilebench.emulated=
prop.ro.product.cpu.abi=arm64-v8a
cpufreq.scaling_governor=schedutil
cpufreq.scaling_cur_freq=2841600
cpufreq.scaling_max_freq=2841600
cpufreq.cpuinfo_max_freq=2841600
thermal=thermal_zone10|cpu-1-6-usr|41500
thermal=thermal_zone2|cpu-0-2-usr|35200
thermal=thermal_zone11|cpu-1-7-usr|42100
thermal=thermal_zone40|battery|29
thermal=thermal_zone41|disabled-sensor|
thermal=thermal_zone42|broken|-273000
df=/dev/block/dm-8  115037236 9023452 105882968   8% /data
uid=2000
"""


def test_parse_state_of_a_phone() -> None:
    state = parse_state(PIXEL_LIKE, 7)
    assert (state.model, state.board, state.android_version) == ("Pixel 4", "msmnile", "13")
    assert (state.governor, state.cur_freq_khz, state.max_freq_khz) == ("schedutil", 2841600, 2841600)
    assert [z.zone for z in state.thermal][:3] == ["thermal_zone2", "thermal_zone10", "thermal_zone11"]
    assert state.thermal[-3].temp_c == 29.0  # already in degrees
    assert state.thermal[-2].temp_c is None and state.thermal[-1].temp_c is None
    # No zone names cpu 7 directly: the hottest CPU zone stands in for it.
    assert (state.cpu_temp_c, state.cpu_temp_zone) == (42.1, "cpu-1-7-usr")
    assert state.free_bytes == 105882968 * 1024
    assert state.rooted is False and state.emulated is False and state.unavailable == []
    assert state.abi == "arm64-v8a" and state.identity_known
    assert parse_state(PIXEL_LIKE, 7, thermal_zone="cpu-1-6-usr").cpu_temp_c == 41.5
    assert state.to_dict()["thermal"][0] == {"zone": "thermal_zone2", "type": "cpu-0-2-usr", "temp_c": 35.2}


def test_parse_state_names_what_is_missing() -> None:
    state = parse_state("prop.ro.product.model=X\nuid=0\n", 0)
    assert state.rooted is True
    assert set(state.unavailable) >= {"android_version", "governor", "cur_freq_khz", "thermal", "cpu_temp_c", "free_bytes"}


def test_abi_falls_back_to_uname_and_a_silent_shell_has_no_identity() -> None:
    silent = parse_state("uid=2000\nuname_m=aarch64\n", 7)  # getprop printed nothing
    assert silent.abi == "arm64-v8a" and not silent.identity_known
    assert {"model", "fingerprint"} <= set(silent.unavailable)
    assert parse_state("", 0).abi is None and "abi" in parse_state("", 0).unavailable
    assert [normalize_abi(m) for m in ("x86_64", "i686", "armv7l", "AARCH64", "riscv64")] == [
        "x86_64",
        "x86",
        "armeabi-v7a",
        "arm64-v8a",
        "riscv64",
    ]


def test_a_snapshot_renews_only_frequency_and_temperatures() -> None:
    state = parse_state(PIXEL_LIKE, 7)
    hot = "cpufreq.scaling_governor=schedutil\ncpufreq.scaling_cur_freq=1785600\nthermal=thermal_zone11|cpu-1-7-usr|68300\n"
    after = state.with_snapshot(hot)
    assert (after.cur_freq_khz, after.cpu_temp_c, [z.zone for z in after.thermal]) == (1785600, 68.3, ["thermal_zone11"])
    assert after.max_freq_khz is None and after.unavailable == ["max_freq_khz"]  # not in this snapshot
    assert (after.model, after.fingerprint, after.free_bytes, after.rooted) == (state.model, state.fingerprint, state.free_bytes, False)
    assert state.with_snapshot(hot + "thermal=thermal_zone40|battery|29\n", thermal_zone="battery").cpu_temp_c == 29.0
    lost = parse_state("prop.ro.product.model=X\n", 0).with_snapshot(hot)
    assert "thermal" not in lost.unavailable and "android_version" in lost.unavailable


def test_zone_matching_does_not_confuse_cluster_numbers() -> None:
    zones = [ThermalReading("z0", "cpu-1-7-usr", 50.0), ThermalReading("z1", "cpu1-thermal", 40.0), ThermalReading("z2", "battery", 60.0)]
    assert pick_cpu_zone(zones, 1).type == "cpu1-thermal"  # not "cpu-1-7-usr"
    assert pick_cpu_zone(zones, 7).type == "cpu-1-7-usr"  # hottest CPU-ish zone
    assert pick_cpu_zone([ThermalReading("z", "battery", 30.0)], 0) is None


def test_state_script_runs_in_one_shell_on_this_machine(tmp_path) -> None:
    state = parse_state(sh(state_script(0, str(tmp_path / "not" / "yet"))).decode(), 0)
    assert state.free_bytes and state.free_bytes > 0  # nearest existing parent
    assert state.rooted is not None
    local = parse_state(local_state_lines(0, str(tmp_path)), 0)
    assert local.model and local.free_bytes and local.rooted is not None
    assert state.abi == local.abi == normalize_abi(platform.machine())  # uname -m, as Python sees it
    # The snapshot is the state script's frequency and thermal part, in any shell.
    snapshot = sh(snapshot_script(0)).decode()
    assert parse_state(snapshot, 0).thermal == state.thermal and snapshot == local_snapshot_lines(0) + ("\n" if snapshot else "")
    with pytest.raises(ValueError):
        state_script(-1, "/data")
