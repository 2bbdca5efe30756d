"""Device state: identity, CPU frequency, temperatures, free space, root.

Reading the state of a phone costs ONE shell round trip: :func:`state_script` builds a
small POSIX shell script (quoted values only) that prints ``key=value`` lines, reading
sysfs with the ``read`` builtin so that even ~80 thermal zones cost no extra processes.
:func:`parse_state` turns those lines into a :class:`DeviceState`; the local transport
produces the same lines from Python (:func:`local_state_lines`), so both share one parser.

Phones differ: every reader tolerates missing files, and ``DeviceState.unavailable``
names what could not be read.

Units: frequencies in kHz (as sysfs reports them), temperatures in degrees Celsius (sysfs
reports millidegrees; values below 1000 are taken as degrees already, which some vendor
zones use), free space in bytes.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

_PROPS = {
    "model": "ro.product.model",
    "board": "ro.board.platform",
    "hardware": "ro.hardware",
    "android_version": "ro.build.version.release",
    "fingerprint": "ro.build.fingerprint",
    "emulated": "ro.mobilebench.emulated",
    "abi": "ro.product.cpu.abi",
}

#: Android ABI names for what ``uname -m`` (or ``platform.machine()``) says.
_ABI_OF_MACHINE = {
    "aarch64": "arm64-v8a",
    "arm64": "arm64-v8a",
    "armv8l": "armeabi-v7a",
    "armv7l": "armeabi-v7a",
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "i686": "x86",
    "i386": "x86",
}


def normalize_abi(text: str | None) -> str | None:
    """An Android ABI name (``arm64-v8a``, ``armeabi-v7a``, ``x86_64``, ``x86``) for an
    ABI or a ``uname -m`` machine name; other names are returned as given, lower case."""
    if not text or not text.strip():
        return None
    text = text.strip().lower()
    return _ABI_OF_MACHINE.get(text, text)
_CPUFREQ_FILES = ("scaling_governor", "scaling_cur_freq", "scaling_max_freq", "cpuinfo_max_freq")


@dataclass(frozen=True)
class ThermalReading:
    zone: str  # thermal_zoneN
    type: str  # what the sensor measures, e.g. "cpu-1-6-usr", "battery"
    temp_c: float | None  # None when the zone could not be read


@dataclass(frozen=True)
class DeviceState:
    """A snapshot of the device; :meth:`to_dict` is JSON-able."""

    cpu: int
    model: str | None
    board: str | None
    android_version: str | None
    fingerprint: str | None
    governor: str | None
    cur_freq_khz: int | None
    max_freq_khz: int | None
    thermal: list[ThermalReading]
    cpu_temp_c: float | None
    cpu_temp_zone: str | None
    free_bytes: int | None
    rooted: bool | None
    emulated: bool
    unavailable: list[str] = field(default_factory=list)
    abi: str | None = None
    """The device's ABI (Android names, :func:`normalize_abi`): ``getprop
    ro.product.cpu.abi``, else ``uname -m``."""

    @property
    def identity_known(self) -> bool:
        """The device said what it is: model and build fingerprint were read. A phone
        whose shell answers nothing (crashed, or an odd shell) has no identity, and its
        numbers cannot be attributed to a phone."""
        return bool(self.model) and bool(self.fingerprint)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_snapshot(self, text: str, *, thermal_zone: str | None = None) -> DeviceState:
        """This state with its frequency and temperatures (:data:`SNAPSHOT_FIELDS`)
        replaced by those in a snapshot's ``key=value`` lines (:func:`snapshot_script`)."""
        fields = _snapshot_fields(text, self.cpu, thermal_zone)
        unavailable = [name for name in self.unavailable if name not in SNAPSHOT_FIELDS] + fields.pop("unavailable")
        return replace(self, **fields, unavailable=unavailable)


def _check_cpu(cpu: int) -> None:
    if not isinstance(cpu, int) or isinstance(cpu, bool) or cpu < 0:
        raise ValueError(f"cpu must be a CPU number, got {cpu!r}")


# r FILE: the file's first line in $v, or nothing (missing/unreadable/EINVAL zones).
# Called directly, never in $(...), which would fork a subshell.
_READ_FN = "r() { v=; read -r v < \"$1\" 2>/dev/null; }"


def snapshot_script(cpu: int) -> str:
    """The part of the state that changes while a model runs, as ``key=value`` lines:
    ``cpu``'s cpufreq files and every thermal zone. Shell builtins only (no process is
    started), so it can bracket a benchmark in the same round trip without disturbing
    it (see ``Device.run_with_snapshots``); :meth:`DeviceState.with_snapshot` reads it."""
    _check_cpu(cpu)
    freq_dir = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
    files = " ".join(_CPUFREQ_FILES)
    return "\n".join(
        [
            _READ_FN,
            f"for f in {files}; do [ -e {freq_dir}/$f ] && {{ r {freq_dir}/$f; printf 'cpufreq.%s=%s\\n' $f \"$v\"; }}; done",
            "for z in /sys/class/thermal/thermal_zone*; do [ -e \"$z/temp\" ] || continue;"
            " r \"$z/type\"; t=$v; r \"$z/temp\"; printf 'thermal=%s|%s|%s\\n' \"${z##*/}\" \"$t\" \"$v\"; done",
        ]
    )


def state_script(cpu: int, workdir: str) -> str:
    """The shell script that prints the whole state as ``key=value`` lines."""
    _check_cpu(cpu)
    # getprop's listing ("[name]: [value]" lines) filtered by a case pattern: one process
    # for every property instead of one (and a subshell) each. Property names are
    # [a-z0-9._] only, so they need no quoting inside the pattern.
    wanted = "|".join(f"'[{name}]: '*" for name in _PROPS.values())
    return "\n".join(
        [
            "getprop 2>/dev/null | while IFS= read -r l; do case $l in "
            f"{wanted}) n=${{l#\\[}}; n=${{n%%\\]*}}; v=${{l#*\\]: \\[}}; printf 'prop.%s=%s\\n' \"$n\" \"${{v%\\]}}\";; "
            "esac; done",
            snapshot_script(cpu),
            # free space: the work dir, or its nearest existing parent before first push.
            f"d={shlex.quote(workdir)}; while [ ! -d \"$d\" ] && [ -n \"$d\" ]; do d=${{d%/*}}; done",
            "printf 'df=%s\\n' \"$(df -k \"${d:-/}\" 2>/dev/null | tail -n 1)\"",
            "printf 'uid=%s\\n' \"$(id -u 2>/dev/null)\"",
            "printf 'uname_m=%s\\n' \"$(uname -m 2>/dev/null)\"",
        ]
    )


def _read_first_line(path: Path) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return text.splitlines()[0].strip() if text.strip() else ""


def local_snapshot_lines(cpu: int) -> str:
    """The same ``key=value`` lines as :func:`snapshot_script`, read from this computer."""
    lines = []
    freq_dir = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq")
    for name in _CPUFREQ_FILES:
        value = _read_first_line(freq_dir / name)
        if value is not None:
            lines.append(f"cpufreq.{name}={value}")
    thermal = Path("/sys/class/thermal")
    for zone in sorted(thermal.glob("thermal_zone*"), key=lambda p: _zone_index(p.name)):
        if (zone / "temp").exists():
            ztype, temp = _read_first_line(zone / "type") or "", _read_first_line(zone / "temp") or ""
            lines.append(f"thermal={zone.name}|{ztype}|{temp}")
    return "\n".join(lines)


def local_state_lines(cpu: int, workdir: str) -> str:
    """The same ``key=value`` lines as :func:`state_script`, read from this computer."""
    lines = []
    dmi = Path("/sys/devices/virtual/dmi/id")
    model = _read_first_line(dmi / "product_name") or _cpu_model_name() or platform.machine()
    lines.append(f"prop.ro.product.model={model}")
    lines.append(f"prop.ro.board.platform={_read_first_line(dmi / 'board_name') or platform.machine()}")
    uname = os.uname()
    lines.append(f"prop.ro.build.fingerprint={uname.sysname} {uname.release} {uname.version} {uname.machine}")
    lines.append(local_snapshot_lines(cpu))
    existing = Path(workdir)
    while not existing.is_dir() and existing != existing.parent:
        existing = existing.parent
    try:
        st = os.statvfs(existing)
        lines.append(f"free_bytes={st.f_bavail * st.f_frsize}")
    except OSError:
        pass
    lines.append(f"uid={os.geteuid()}")
    lines.append(f"uname_m={platform.machine()}")
    return "\n".join(lines)


def _cpu_model_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _zone_index(name: str) -> int:
    digits = re.sub(r"\D", "", name)
    return int(digits) if digits else -1


def _temp_c(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    temp = value / 1000.0 if abs(value) >= 1000 else value
    # Disabled sensors report things like -273000 or 0xFFFF; drop what cannot be real.
    return round(temp, 3) if -40.0 <= temp <= 200.0 else None


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _df_free_bytes(line: str) -> int | None:
    """Available bytes from the last line of ``df -k`` (toybox or coreutils)."""
    tokens = line.split()
    for i, token in enumerate(tokens):
        if token.endswith("%") and i >= 1 and tokens[i - 1].isdigit():
            return int(tokens[i - 1]) * 1024
    return None


def pick_cpu_zone(thermal: list[ThermalReading], cpu: int, preferred_type: str | None = None) -> ThermalReading | None:
    """The zone measuring ``cpu``: the profile's named zone, else a type naming this
    core (``cpu7``, ``cpu-7-...``, ``cpu_7``), else the hottest CPU-ish zone."""
    readable = [z for z in thermal if z.temp_c is not None]
    if preferred_type:
        for zone in readable:
            if zone.type == preferred_type:
                return zone
    # "cpu-1-6-usr" (Qualcomm: cluster 1, sensor 6) must not match cpu 1.
    exact = re.compile(rf"(?:^|[^a-z0-9])cpu[-_]?{cpu}(?![0-9]|-[0-9])", re.IGNORECASE)
    matches = [z for z in readable if exact.search(z.type)]
    if matches:
        return max(matches, key=lambda z: z.temp_c)
    cpuish = [z for z in readable if re.search(r"cpu|x86_pkg|soc_therm|tsens", z.type, re.IGNORECASE)]
    return max(cpuish, key=lambda z: z.temp_c) if cpuish else None


def parse_state(text: str, cpu: int, *, thermal_zone: str | None = None) -> DeviceState:
    """Build a :class:`DeviceState` from ``key=value`` lines."""
    props: dict[str, str] = {}
    df_line = free_line = uid = machine = None
    for key, value in _key_values(text):
        if key.startswith("prop."):
            props[key[5:]] = value
        elif key == "df":
            df_line = value
        elif key == "free_bytes":
            free_line = value
        elif key == "uid":
            uid = value
        elif key == "uname_m":
            machine = value
    unavailable: list[str] = []

    def prop(field_name: str) -> str | None:
        value = props.get(_PROPS[field_name]) or None
        if value is None and field_name not in ("emulated", "hardware", "abi"):
            unavailable.append(field_name)
        return value

    model, board = prop("model"), props.get(_PROPS["board"]) or props.get(_PROPS["hardware"]) or None
    if board is None:
        unavailable.append("board")
    android_version, fingerprint = prop("android_version"), prop("fingerprint")
    dynamic = _snapshot_fields(text, cpu, thermal_zone)
    unavailable += dynamic.pop("unavailable")
    free = _int(free_line) if free_line is not None else (_df_free_bytes(df_line) if df_line else None)
    if free is None:
        unavailable.append("free_bytes")
    rooted = uid == "0" if uid and uid.isdigit() else None
    if rooted is None:
        unavailable.append("rooted")
    abi = normalize_abi(props.get(_PROPS["abi"]) or machine)
    if abi is None:
        unavailable.append("abi")
    return DeviceState(
        cpu=cpu,
        model=model,
        board=board,
        android_version=android_version,
        fingerprint=fingerprint,
        **dynamic,
        free_bytes=free,
        rooted=rooted,
        emulated=props.get(_PROPS["emulated"]) == "1",
        unavailable=unavailable,
        abi=abi,
    )


#: The DeviceState fields a snapshot (see snapshot_script) renews.
SNAPSHOT_FIELDS = ("governor", "cur_freq_khz", "max_freq_khz", "thermal", "cpu_temp_c", "cpu_temp_zone")


def _key_values(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            yield key, value.strip()


def _snapshot_fields(text: str, cpu: int, thermal_zone: str | None) -> dict[str, Any]:
    """The :data:`SNAPSHOT_FIELDS` from ``cpufreq.*`` and ``thermal`` lines, and under
    ``"unavailable"`` those that could not be read."""
    freq: dict[str, str] = {}
    thermal: list[ThermalReading] = []
    for key, value in _key_values(text):
        if key.startswith("cpufreq."):
            freq[key[8:]] = value
        elif key == "thermal":
            zone, _, rest = value.partition("|")
            ztype, _, raw = rest.partition("|")
            thermal.append(ThermalReading(zone=zone, type=ztype, temp_c=_temp_c(raw)))
    thermal.sort(key=lambda z: _zone_index(z.zone))
    zone = pick_cpu_zone(thermal, cpu, thermal_zone)
    fields: dict[str, Any] = {
        "governor": freq.get("scaling_governor") or None,
        "cur_freq_khz": _int(freq.get("scaling_cur_freq")),
        "max_freq_khz": _int(freq.get("cpuinfo_max_freq")) or _int(freq.get("scaling_max_freq")),
        "thermal": thermal,
        "cpu_temp_c": zone.temp_c if zone else None,
        "cpu_temp_zone": zone.type if zone else None,
    }
    unavailable = [name for name in ("governor", "cur_freq_khz", "max_freq_khz") if fields[name] is None]
    unavailable += ["thermal"] if not thermal else []
    unavailable += ["cpu_temp_c"] if zone is None else []
    return fields | {"unavailable": unavailable}
