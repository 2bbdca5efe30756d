"""The emulated phone is a network service: whoever gets a shell on it must not get this
computer. Each case goes through a real ADB client (Debian's ``adb`` or adb-shell)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from adb_shell.exceptions import AdbCommandFailureException, PushFailedError

from mobilebench.device.emulator import PhoneEmulator

from .conftest import plain_adb_shell


def test_host_secrets_are_not_on_the_phone(adb_client, tmp_path: Path) -> None:
    with PhoneEmulator(tmp_path / "phone", accepted_keys=[adb_client.key]) as phone:
        serial = phone.address
        assert f"connected to {serial}" in adb_client("connect", serial).stdout
        shadow = adb_client("-s", serial, "shell", "cat /etc/shadow; echo rc=$?")
        assert "root:" not in shadow.stdout and "rc=1" in shadow.stdout, shadow.stdout
        pulled = adb_client("-s", serial, "pull", "/etc/shadow", str(tmp_path / "shadow"))
        assert pulled.returncode != 0 and not (tmp_path / "shadow").exists()
        listing = adb_client("-s", serial, "shell", "ls /etc /home /root 2>&1").stdout
        assert "passwd" not in listing and "shadow" not in listing, listing
        assert adb_client("-s", serial, "shell", "id -u").stdout.strip() == "2000"


def test_commands_run_as_an_unprivileged_host_user(device) -> None:
    marker = f"2.{time.monotonic_ns() % 10**6:06d}"  # a sleep only this test starts
    running = threading.Thread(target=device.run, args=(["sleep", marker],), kwargs={"timeout_s": 30})
    running.start()
    try:
        uids = []
        for _ in range(200):
            for entry in os.scandir("/proc"):
                try:
                    if entry.name.isdigit() and Path(entry.path, "cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                        status = Path(entry.path, "status").read_text()
                        uids = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
                except OSError:
                    continue
            if uids:
                break
            time.sleep(0.05)
        assert uids, "the command never showed up"
        assert all(uid != "0" for uid in uids[0]), uids  # real, effective, saved, fs uid
    finally:
        running.join(timeout=30)


def test_the_phone_cannot_reach_this_computers_network(device, emulator) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        for target in (port, emulator.port):  # a host service, and the emulator itself
            probe = device.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{target} && echo connected"], timeout_s=20)
            assert "connected" not in probe.stdout and probe.exit_code != 0, probe.stdout
    # Its own loopback works: a phone may talk to itself.
    script = "import socket; s = socket.create_server(('127.0.0.1', 0)); print(s.getsockname()[1])"
    assert device.run([sys.executable, "-c", script], timeout_s=20).stdout.strip().isdigit()


# Swaps the folder x and a link y to a host folder (renameat2 RENAME_EXCHANGE: one
# atomic system call, so x is always one or the other), as fast as Python can.
SWAP_LOOP = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.chdir('/data/local/tmp/race')
os.symlink(sys.argv[1], 'y')
end, flips = time.monotonic() + float(sys.argv[2]), 0
while time.monotonic() < end:
    for _ in range(1000):
        if libc.renameat2(-100, b'x', -100, b'y', 2) != 0:
            raise OSError(ctypes.get_errno(), 'renameat2')
    flips += 1000
print('flips', flips)
"""


@pytest.mark.slow
def test_a_symlink_swapped_in_during_push_or_pull_never_reaches_outside(emulator, adb_key: Path, tmp_path: Path) -> None:
    """The device's shell swaps a folder with a link to a host folder, over and over, while
    the client pushes into and pulls from that folder: nothing may be written to, or read
    from, the host folder (the emulator would do it with its own rights)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_bytes(b"host secret")
    secret.chmod(0o600)
    payload = tmp_path / "payload"
    payload.write_bytes(os.urandom(4096))

    swapper = plain_adb_shell(emulator, adb_key)
    client = plain_adb_shell(emulator, adb_key)
    try:
        swapper.shell("mkdir -p /data/local/tmp/race/x && echo inside > /data/local/tmp/race/x/secret")
        loop = swapper.streaming_shell(f"{sys.executable} -c \"{SWAP_LOOP}\" {outside} 6", read_timeout_s=30)
        flips: list[str] = []
        thread = threading.Thread(target=lambda: flips.extend(loop), daemon=True)
        thread.start()
        time.sleep(0.3)
        tries = pushed = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            tries += 1
            try:
                client.push(str(payload), f"/data/local/tmp/race/x/f{pushed}", read_timeout_s=10)
                pushed += 1
            except (PushFailedError, AdbCommandFailureException):
                pass
            back = tmp_path / "back"
            try:
                client.pull("/data/local/tmp/race/x/secret", str(back), read_timeout_s=10)
                assert back.read_bytes() == b"inside\n"
            except AdbCommandFailureException:
                pass
        thread.join(timeout=30)
        assert "flips" in "".join(flips), flips  # the loop really ran
    finally:
        swapper.close()
        client.close()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert tries >= 10 and pushed >= 1  # pushes went through between the swaps


def test_a_folder_that_is_not_an_emulators_is_never_emptied(tmp_path: Path) -> None:
    from mobilebench.errors import UsageError

    mine = tmp_path / "project"
    for relative in ("system/keep.txt", "sys/notes.md", "data/photo.jpg"):
        (mine / relative).parent.mkdir(parents=True, exist_ok=True)
        (mine / relative).write_text("mine")
    with pytest.raises(UsageError, match=r"is not empty and is not a phone emulator's folder") as info:
        PhoneEmulator(mine).start()
    assert "\n" not in str(info.value)
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*") if p.is_file()) == [
        "data/photo.jpg",
        "sys/notes.md",
        "system/keep.txt",
    ]
    # An emulator's own folder is reused: its generated trees renewed, /data kept.
    phone = tmp_path / "phone"
    with PhoneEmulator(phone):
        (phone / "data" / "local" / "tmp" / "kept").write_text("x")
    with PhoneEmulator(phone):
        assert (phone / "data" / "local" / "tmp" / "kept").read_text() == "x"
        assert (phone / "system" / "build.prop").is_file()
