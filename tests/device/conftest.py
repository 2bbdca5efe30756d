"""Fixtures for the device layer: an ADB key pair, a running phone emulator, a connection.

The emulator is cheap to start (~50 ms), so each test gets a fresh one with its own
fault plan and files.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner

from mobilebench.device import connect, get_profile
from mobilebench.device.keys import ensure_key_pair

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="the phone emulator needs bubblewrap (apt-get install bubblewrap)")


@pytest.fixture
def adb_key() -> Path:
    """The session's client key (<config dir>/adbkey, created on first use)."""
    return ensure_key_pair()


@pytest.fixture
def phone_dir(tmp_path: Path) -> Path:
    return tmp_path / "phone"


@pytest.fixture
def emulator(phone_dir: Path, adb_key: Path):
    if shutil.which("bwrap") is None:
        pytest.skip("the phone emulator needs bubblewrap (apt-get install bubblewrap)")
    from mobilebench.device.emulator import PhoneEmulator

    with PhoneEmulator(phone_dir, accepted_keys=[adb_key.with_name("adbkey.pub")]) as phone:
        yield phone


def plain_adb_shell(emulator, key: Path) -> AdbDeviceTcp:
    """adb-shell as anyone would use it: its own TCP transport, blocking sockets."""
    adb = AdbDeviceTcp("127.0.0.1", emulator.port)
    adb.connect(rsa_keys=[CryptographySigner(str(key))], auth_timeout_s=5, read_timeout_s=5)
    return adb


def emulator_profile(phone):
    """The built-in ``emulator`` profile pointed at a running emulator."""
    return replace(get_profile("emulator"), address=phone.address)


@pytest.fixture
def device(emulator):
    with connect(emulator_profile(emulator), timeout_s=10) as dev:
        yield dev


@pytest.fixture
def tmp_dir_on_phone(emulator) -> Path:
    """Host path of the phone's /data/local/tmp."""
    return emulator.root.data / "local" / "tmp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def adb_client(tmp_path: Path):
    """``adb_client("shell", ...)``: Debian's ``adb`` with its own server on a private
    port and a throw-away HOME holding a fresh key (``adb_client.key``: its .pub)."""
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb client is not installed (apt-get install adb)")
    home = tmp_path / "home"
    (home / ".android").mkdir(parents=True)
    keygen(str(home / ".android" / "adbkey"))  # the key format adb itself uses
    server_port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "ANDROID_SDK_HOME": str(home),
        "ANDROID_USER_HOME": str(home / ".android"),
        "ADB_SERVER_PORT": str(server_port),
    }
    env.pop("ADB_VENDOR_KEYS", None)

    def adb(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["adb", "-P", str(server_port), *args], env=env, capture_output=True, text=True, timeout=timeout)

    adb.key = home / ".android" / "adbkey.pub"  # type: ignore[attr-defined]
    try:
        yield adb
    finally:
        adb("kill-server", timeout=15)


@pytest.fixture(scope="session")
def skipnet_pte() -> Path:
    """skipnet_m as ExecuTorch fp32 (exported once per test session, into the session's
    artifact cache that tests/profile shares)."""
    from mobilebench.export import ExportOptions, export_model
    from mobilebench.zoo.resolve import resolve_model

    return export_model(resolve_model("skipnet_m"), ExportOptions(runtime="executorch", dtype="fp32")).path
