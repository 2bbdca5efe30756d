"""What the emulated phones look like: CPU layout, frequencies, properties, sensors.

Facts from shared/reference/devices.md (Pixel 4: Snapdragon 855 "msmnile", cpu0-3
Cortex-A55 1.78 GHz, cpu4-6 Cortex-A76 2.42 GHz, cpu7 prime Cortex-A76 2.84 GHz;
Pixel 3: Snapdragon 845 "sdm845", cpu0-3 Cortex-A55 1.6 GHz, cpu4-7 Cortex-A75 2.5 GHz).
Minimum frequencies and thermal zone names follow the Qualcomm kernels' style; build
fingerprints are marked EMULATED so that no result can pass for a real build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobilebench.errors import UsageError


@dataclass(frozen=True)
class CpuCluster:
    cpus: tuple[int, ...]
    core: str
    min_freq_khz: int
    max_freq_khz: int


@dataclass(frozen=True)
class ThermalZoneSpec:
    type: str
    cpu: int | None  # the core it measures; None for board sensors (battery, skin, ...)


@dataclass(frozen=True)
class PhoneSpec:
    name: str
    clusters: tuple[CpuCluster, ...]
    props: dict[str, str] = field(hash=False)
    zones: tuple[ThermalZoneSpec, ...]
    governor: str = "schedutil"

    @property
    def cpu_count(self) -> int:
        return sum(len(c.cpus) for c in self.clusters)

    def cluster_of(self, cpu: int) -> CpuCluster:
        for cluster in self.clusters:
            if cpu in cluster.cpus:
                return cluster
        raise KeyError(cpu)

    def all_props(self, abi: str) -> dict[str, str]:
        """The properties getprop answers for this phone running ``abi`` programs
        (``arm64-v8a``, or this computer's ABI), with the emulator's own markers."""
        abilist = "arm64-v8a,armeabi-v7a,armeabi" if abi == "arm64-v8a" else abi
        return {
            **self.props,
            "ro.product.cpu.abi": abi,
            "ro.product.cpu.abilist": abilist,
            "ro.mobilebench.emulated": "1",
            "ro.mobilebench.phone": self.name,
        }


def _qcom_zones(little: tuple[int, ...], big: tuple[int, ...]) -> tuple[ThermalZoneSpec, ...]:
    """Qualcomm-style sensors: one per little core (cpu-0-N-usr), two per big core
    (cpu-1-N-usr), plus cluster, GPU and board sensors."""
    zones = [ThermalZoneSpec(f"cpu-0-{i}-usr", cpu) for i, cpu in enumerate(little)]
    for i, cpu in enumerate(big):
        zones += [ThermalZoneSpec(f"cpu-1-{2 * i}-usr", cpu), ThermalZoneSpec(f"cpu-1-{2 * i + 1}-usr", cpu)]
    zones += [
        ThermalZoneSpec("cpuss-0-usr", None),
        ThermalZoneSpec("gpuss-0-usr", None),
        ThermalZoneSpec("battery", None),
        ThermalZoneSpec("skin-therm", None),
    ]
    return tuple(zones)


PHONES: dict[str, PhoneSpec] = {
    "pixel4": PhoneSpec(
        name="pixel4",
        clusters=(
            CpuCluster((0, 1, 2, 3), "Cortex-A55", 300_000, 1_785_600),
            CpuCluster((4, 5, 6), "Cortex-A76", 710_400, 2_419_200),
            CpuCluster((7,), "Cortex-A76 (prime)", 825_600, 2_841_600),
        ),
        props={
            "ro.product.model": "Pixel 4",
            "ro.product.name": "flame",
            "ro.product.device": "flame",
            "ro.product.brand": "google",
            "ro.product.manufacturer": "Google",
            "ro.board.platform": "msmnile",
            "ro.hardware": "flame",
            "ro.build.version.release": "13",
            "ro.build.version.sdk": "33",
            "ro.build.type": "userdebug",
            "ro.build.fingerprint": "google/flame/flame:13/EMULATED/mobilebench:userdebug/test-keys",
        },
        zones=_qcom_zones((0, 1, 2, 3), (4, 5, 6, 7)),
    ),
    "pixel3": PhoneSpec(
        name="pixel3",
        clusters=(
            # devices.md gives 1.6 GHz and 2.5 GHz; kHz values are those, rounded.
            CpuCluster((0, 1, 2, 3), "Cortex-A55", 300_000, 1_600_000),
            CpuCluster((4, 5, 6, 7), "Cortex-A75", 825_600, 2_500_000),
        ),
        props={
            "ro.product.model": "Pixel 3",
            "ro.product.name": "blueline",
            "ro.product.device": "blueline",
            "ro.product.brand": "google",
            "ro.product.manufacturer": "Google",
            "ro.board.platform": "sdm845",
            "ro.hardware": "blueline",
            "ro.build.version.release": "12",
            "ro.build.version.sdk": "31",
            "ro.build.type": "userdebug",
            "ro.build.fingerprint": "google/blueline/blueline:12/EMULATED/mobilebench:userdebug/test-keys",
        },
        zones=_qcom_zones((0, 1, 2, 3), (4, 5, 6, 7)),
    ),
}


def get_phone(name: str) -> PhoneSpec:
    try:
        return PHONES[name]
    except KeyError:
        raise UsageError(f"the emulator knows no phone {name!r}; choose one of {', '.join(sorted(PHONES))}") from None
