"""Debian's real ``adb`` client against the phone emulator: connect, shell, push, pull.

The adb server runs on a private port with a throw-away HOME holding the key the
emulator accepts, and is killed at the end (fixture ``adb_client`` in conftest).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from adb_shell.auth.keygen import keygen

from mobilebench.device.emulator import PhoneEmulator

pytestmark = pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb client is not installed (apt-get install adb)")


def test_debian_adb_connects_runs_pushes_and_pulls(adb_client, tmp_path: Path) -> None:
    with PhoneEmulator(tmp_path / "phone", accepted_keys=[adb_client.key]) as phone:
        serial = phone.address
        connected = adb_client("connect", serial)
        assert f"connected to {serial}" in connected.stdout, connected

        devices = adb_client("devices", "-l").stdout
        assert serial in devices and "model:Pixel_4" in devices and "device product:flame" in devices

        shell = adb_client("-s", serial, "shell", "getprop ro.product.model; id -u; echo $((6 * 7))")
        assert shell.stdout.splitlines() == ["Pixel 4", "2000", "42"]

        payload = tmp_path / "payload.bin"
        payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
        pushed = adb_client("-s", serial, "push", str(payload), "/data/local/tmp/dir/payload.bin")
        assert pushed.returncode == 0, pushed
        on_phone = tmp_path / "phone" / "data" / "local" / "tmp" / "dir" / "payload.bin"
        assert on_phone.read_bytes() == payload.read_bytes()

        digest = adb_client("-s", serial, "shell", "sha256sum /data/local/tmp/dir/payload.bin").stdout.split()[0]
        assert digest == hashlib.sha256(payload.read_bytes()).hexdigest()

        back = tmp_path / "back.bin"
        pulled = adb_client("-s", serial, "pull", "/data/local/tmp/dir/payload.bin", str(back))
        assert pulled.returncode == 0 and back.read_bytes() == payload.read_bytes()

        # The adb server multiplexes concurrent commands as streams on one connection.
        with ThreadPoolExecutor(3) as pool:
            outputs = list(pool.map(lambda i: adb_client("-s", serial, "shell", f"sleep 1; echo {i}").stdout, range(3)))
        assert outputs == ["0\n", "1\n", "2\n"]

        missing = adb_client("-s", serial, "pull", "/data/local/tmp/nope", str(tmp_path / "nope"))
        assert missing.returncode != 0 and "does not exist" in missing.stderr + missing.stdout


def test_debian_adb_with_an_unknown_key_is_refused(adb_client, tmp_path: Path) -> None:
    other = tmp_path / "other"
    keygen(str(other))
    with PhoneEmulator(tmp_path / "phone", accepted_keys=[other.with_name("other.pub")]) as phone:
        adb_client("connect", phone.address)
        result = adb_client("-s", phone.address, "shell", "echo should-not-run")
        assert "should-not-run" not in result.stdout
        assert result.returncode != 0
