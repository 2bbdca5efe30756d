"""Live output from ``Device.run(..., on_output=...)``, on the phone emulator (real ADB
protocol) and on this computer: pieces arrive while the command runs, add up to the
result's stdout, never show the exit-status sentinel, and the timeout still bounds the
whole command."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from mobilebench.device import connect, get_profile
from mobilebench.device.adb import SentinelHoldBack
from mobilebench.device.shell import split_status, wrap_with_status
from mobilebench.errors import MobilebenchError


@pytest.fixture(params=["emulator", "host"])
def any_device(request, tmp_path: Path):
    if request.param == "emulator":
        yield request.getfixturevalue("device")
    else:
        with connect(replace(get_profile("host"), workdir=str(tmp_path / "work"))) as dev:
            yield dev


class Recorder:
    """An on_output callback that keeps each piece with the time it arrived."""

    def __init__(self) -> None:
        self.pieces: list[tuple[float, str]] = []

    def __call__(self, text: str) -> None:
        self.pieces.append((time.monotonic(), text))

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.pieces)


def test_output_arrives_while_the_command_runs(any_device) -> None:
    seen = Recorder()
    result = any_device.run(["sh", "-c", "echo first; sleep 0.5; echo second; exit 3"], timeout_s=10, on_output=seen)
    returned_at = time.monotonic()
    assert (result.stdout, result.exit_code) == ("first\nsecond\n", 3)
    assert seen.text == result.stdout
    # The whole first line, newline included, long before the end: line-based progress
    # (the runner's iteration lines) is never a line late.
    early = "".join(text for at, text in seen.pieces if returned_at - at > 0.3)
    assert early == "first\n", "the first line only arrived when the command ended"
    assert all(text for _, text in seen.pieces)


def test_the_sentinel_never_reaches_the_callback(any_device) -> None:
    seen = Recorder()
    result = any_device.run(["sh", "-c", "printf 'no newline at the end'"], timeout_s=10, on_output=seen)
    assert seen.text == result.stdout == "no newline at the end" and result.exit_code == 0
    # Many packets' worth of lines: every packet boundary is a chance to leak the sentinel.
    seen = Recorder()
    script = "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done; echo; echo"
    result = any_device.run(["sh", "-c", script], timeout_s=30, on_output=seen)
    expected = "".join(f"line{i}\n" for i in range(20000)) + "\n\n"
    assert result.stdout == expected and seen.text == expected
    assert not any("__MB_RC_" in text for _, text in seen.pieces)
    seen = Recorder()
    assert any_device.run(["true"], timeout_s=10, on_output=seen).stdout == "" and seen.pieces == []


def test_a_character_split_between_writes_arrives_whole(any_device) -> None:
    seen = Recorder()
    # U+1F600 (F0 9F 98 80) written in two halves 0.3 s apart, so they cross the link apart.
    script = r"printf 'caf\303\251 \360\237'; sleep 0.3; printf '\230\200 ok\n'"
    result = any_device.run(["sh", "-c", script], timeout_s=10, on_output=seen)
    assert result.stdout == "café \U0001F600 ok\n" == seen.text
    assert len(seen.pieces) >= 2 and seen.pieces[0][1] == "café "  # the half character waited
    assert not any("\ufffd" in text for _, text in seen.pieces)


def test_the_timeout_bounds_a_command_that_keeps_printing(any_device) -> None:
    seen = Recorder()
    start = time.monotonic()
    with pytest.raises(MobilebenchError, match=r"command 'sh' did not finish within 1 s"):
        any_device.run(["sh", "-c", "while :; do echo tick; sleep 0.1; done"], timeout_s=1, on_output=seen)
    assert time.monotonic() - start < 3
    assert seen.text.startswith("tick\n")
    # A silent command too, and the device is usable afterwards.
    with pytest.raises(MobilebenchError, match=r"did not finish within 0.5 s"):
        any_device.run(["sh", "-c", "sleep 5"], timeout_s=0.5, on_output=seen)
    assert any_device.run(["echo", "alive"], timeout_s=10, on_output=seen).stdout == "alive\n"


def test_an_error_in_the_callback_ends_the_command(any_device) -> None:
    def explode(_text: str) -> None:
        raise ConnectionResetError("from the callback")  # a link error type on purpose

    with pytest.raises(ConnectionResetError, match="from the callback"):
        any_device.run(["sh", "-c", "echo one; sleep 3; echo two"], timeout_s=10, on_output=explode)
    assert any_device.run(["echo", "alive"], timeout_s=10).stdout == "alive\n"


LONG_OUTPUT = ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"]


def test_a_retried_command_streams_its_output_again(device, emulator) -> None:
    seen = Recorder()
    emulator.faults.drop_after_bytes = 100_000
    result = device.run(LONG_OUTPUT, timeout_s=20, idempotent=True, on_output=seen)
    assert result.stdout == "x" * 300_000
    assert emulator.faults.drop_after_bytes is None  # it fired
    assert len(seen.text) > 300_000 and seen.text.endswith(result.stdout)  # first attempt, then all of the second
    emulator.faults.drop_after_bytes = 100_000
    with pytest.raises(MobilebenchError, match=r"connection dropped during command 'sh'.*not retried"):
        device.run(LONG_OUTPUT, timeout_s=20, on_output=Recorder())


def test_hold_back_releases_all_but_the_sentinel_at_any_split() -> None:
    wrapped, sentinel = wrap_with_status("true")
    for body in (b"", b"a", b"line\n", b"ends with a newline\n\n", b"\n__MB_RC_ but not the token\n"):
        output = body + sentinel.encode() + b":7\n"
        for step in (1, 2, 5, 64):
            hold_back = SentinelHoldBack(sentinel.encode())
            released = b"".join(hold_back.feed(output[i : i + step]) for i in range(0, len(output), step))
            assert hold_back.output == output
            stdout, code = split_status(output, sentinel)
            assert (stdout, code) == (body, 7)
            assert released + hold_back.finish(stdout) == body, (body, step)
    hold_back = SentinelHoldBack(sentinel.encode())
    assert hold_back.feed(b"progress 1\nprogress 2") == b"progress 1\nprogress 2"  # nothing held: no delay
    assert hold_back.feed(b"\n") == b"\n"  # a finished line is passed on at once, never a line late
    assert hold_back.feed(b"progress 3\n__MB_") == b"progress 3\n"  # could be the sentinel's start
    assert hold_back.feed(b"x") == b"__MB_x"


def test_snapshots_bracket_a_command_in_its_own_round_trip(any_device, request, monkeypatch) -> None:
    """run_with_snapshots: the command's output streams and returns exactly as with run();
    the snapshots read as states; on ADB the whole thing is one shell on the phone."""
    on_phone = "emulator" in request.node.callspec.id
    if on_phone:
        emulator = request.getfixturevalue("emulator")
        spawned = []
        spawn = emulator.sandbox.spawn
        monkeypatch.setattr(emulator.sandbox, "spawn", lambda *a, **k: spawned.append(a) or spawn(*a, **k))
    seen = Recorder()
    state = any_device.read_state(0)
    before, result, after = any_device.run_with_snapshots(
        ["sh", "-c", "echo first; sleep 0.3; printf 'no newline'; exit 5"], cpu=0, timeout_s=10, on_output=seen
    )
    assert (result.stdout, result.exit_code) == ("first\nno newline", 5)
    assert seen.text == result.stdout  # the snapshots never reach the live output
    for snapshot in (before, after):
        assert all(line.startswith(("cpufreq.", "thermal=")) for line in snapshot.splitlines())
        renewed = state.with_snapshot(snapshot)
        assert (renewed.model, renewed.fingerprint, renewed.free_bytes) == (state.model, state.fingerprint, state.free_bytes)
        if on_phone:  # this computer may have neither cpufreq nor thermal zones (a VM)
            assert renewed.thermal and renewed.cpu_temp_c is not None and renewed.cur_freq_khz
    if on_phone:
        assert len(spawned) == 2  # read_state, then one shell for snapshot, command, snapshot
