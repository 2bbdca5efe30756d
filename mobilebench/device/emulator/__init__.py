"""The phone emulator: a device that speaks the real ADB protocol on loopback.

It lets the very code path that drives a Pixel over ADB run in tests and demos without
one: adb-shell and Debian's ``adb`` both connect to it, commands run on this computer
inside a bubblewrap sandbox that presents Android paths (/data/local/tmp,
/sys/devices/system/cpu, /sys/class/thermal, getprop), the cores heat up under load,
and faults can be injected. Everything it measures is labelled emulated.

    with PhoneEmulator(tmp_path, accepted_keys=[key_pub]) as phone:
        ...  # ADB on 127.0.0.1:phone.port
"""

from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.emulator.phones import PHONES, PhoneSpec, get_phone
from mobilebench.device.emulator.physics import ThermalModel
from mobilebench.device.emulator.server import ABIS, PhoneEmulator

__all__ = ["ABIS", "PHONES", "FaultPlan", "PhoneEmulator", "PhoneSpec", "ThermalModel", "get_phone"]
