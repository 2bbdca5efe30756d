"""The device layer: profiles, connections (ADB or local), device state, the emulator.

Typical use::

    from mobilebench.device import connect, get_profile

    profile = get_profile("pixel4", address="192.168.1.20:5555")
    with connect(profile) as device:
        device.push_if_changed(Path("model.pte"), f"{profile.workdir}/model.pte")
        result = device.run(["taskset", "80", "./mobilebench_runner", "--model", "model.pte"],
                            timeout_s=120, cwd=profile.workdir)
        state = device.read_state(profile.cpus[0])

The phone emulator lives in :mod:`mobilebench.device.emulator`.
"""

from __future__ import annotations

from pathlib import Path

from mobilebench.device.adb import AdbDevice
from mobilebench.device.base import CommandResult, Device, ProgressCallback, RemoteStat
from mobilebench.device.local import LocalDevice
from mobilebench.device.profiles import DeviceProfile, get_profile, load_profiles
from mobilebench.device.state import DeviceState, ThermalReading


def connect(profile: DeviceProfile, *, timeout_s: float = 10.0, key_path: Path | None = None) -> Device:
    """Open the device a profile describes.

    ``timeout_s`` bounds connecting and each protocol step (not commands: those take
    their own timeout). ``key_path`` is a private ADB key to use instead of the profile's
    ``adb_key`` or ``<config dir>/adbkey`` (created on first use).
    Raises MobilebenchError when the device is unreachable or refuses the key.
    """
    if profile.transport == "local":
        return LocalDevice(profile).open()
    return AdbDevice(profile, timeout_s=timeout_s, key_path=key_path).open()


__all__ = [
    "CommandResult",
    "Device",
    "DeviceProfile",
    "DeviceState",
    "ProgressCallback",
    "RemoteStat",
    "ThermalReading",
    "connect",
    "get_profile",
    "load_profiles",
]
