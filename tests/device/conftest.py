"""Fixtures for the device layer: an ADB key pair, a running phone emulator, a connection.

The emulator is cheap to start (~50 ms), so each test gets a fresh one with its own
fault plan and files.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

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
