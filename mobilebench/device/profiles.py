"""Device profiles: how to reach a device and how to benchmark on it.

Profiles come from TOML files, one table per profile, searched in this order (later files
override single keys of earlier ones, or add profiles):

1. the built-ins shipped with the package (``builtin_devices.toml``: pixel4, pixel3, host,
   emulator),
2. ``<config dir>/devices.toml`` (see :func:`mobilebench.paths.config_dir`),
3. ``./devices.toml`` in the current directory (the project's file),
4. an explicit file given on the command line (``extra_file``).

Each table is checked against the fields of :class:`DeviceProfile` with
:mod:`mobilebench.tomlconf`: unknown keys and bad values are one-line errors naming the
file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from mobilebench import paths
from mobilebench.errors import UsageError
from mobilebench.text import suggest
from mobilebench.tomlconf import TomlFile, parse_toml, read_table, read_toml

DEFAULT_ADB_WORKDIR = "/data/local/tmp/mobilebench"
DEFAULT_ADB_PORT = 5555
BUILTIN_SOURCE = "built-in"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")

#: Other spellings of a runtime accepted in ``runners`` tables -> the runtime's name.
RUNTIME_ALIASES = {"onnxruntime": "onnx"}


# ----------------------------------------------------------------------------- values


def parse_address(text: str) -> str:
    """Normalise ``host[:port]`` (IPv6 as ``[addr]:port``); the port defaults to 5555.

    Raises ValueError with a message that reads after the option or key name
    (``must be HOST:PORT, got ...``).
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"must be HOST:PORT or [IPv6]:PORT, got {text!r}")
        port_text, host_out = rest[1:], f"[{host}]"
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        host_out = host
    elif ":" in text:
        raise ValueError(f"must write an IPv6 address as [ADDR]:PORT, got {text!r}")
    else:
        host, port_text, host_out = text, "", text
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"must be HOST:PORT, got {text!r}")
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ValueError(f"must have a port from 1 to 65535, got {port_text!r} in {text!r}")
    return f"{host_out}:{int(port_text) if port_text else DEFAULT_ADB_PORT}"


def split_address(address: str) -> tuple[str, int]:
    """``"1.2.3.4:5555"`` -> ``("1.2.3.4", 5555)``; IPv6 brackets are removed."""
    host, _, port = parse_address(address).rpartition(":")
    return host.strip("[]"), int(port)


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _workdir(value: str) -> str:
    if not value.startswith(("/", "~")):
        raise ValueError(f"must be an absolute path, got {value!r}")
    if "\n" in value or "\0" in value:
        raise ValueError("must not contain newlines or NUL bytes")
    return value.rstrip("/") or "/"


def _cpus(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise ValueError("must be a non-empty list of CPU numbers like [7]")
    if len(set(value)) != len(value):
        raise ValueError(f"lists a CPU twice: {list(value)!r}")
    return value


def _runners(value: dict[str, Any]) -> dict[str, str]:
    """Runtime aliases to their names (each value is checked at its own line by
    :func:`_parse_layer`)."""
    return {RUNTIME_ALIASES.get(runtime, runtime): spec for runtime, spec in value.items()}


@dataclass(frozen=True)
class DeviceProfile:
    """One device as the benchmark sees it; every field but ``name`` and ``source`` is a
    key of devices.toml (``builtin_devices.toml`` documents them).

    ``cpus`` are the device's CPU numbers a benchmark is pinned to (e.g. ``(7,)``, the
    Pixel 4's prime core). ``runners`` maps a runtime (``executorch``, ``onnx``: the
    names ``mobilebench profile --runtime`` takes) to the runner's name, optionally
    ``name:PATH`` (see :func:`mobilebench.bench.session.plan_runner`). ``source`` is the
    file that last set a key of this profile (``built-in`` for the package's own file).
    """

    name: str = field(metadata={"toml": False})
    source: str = field(metadata={"toml": False})
    transport: Literal["adb-tcp", "adb-usb", "local"]
    cpus: tuple[int, ...] = field(metadata={"min": 0, "check": _cpus})
    workdir: str = field(metadata={"check": _workdir})
    address: str | None = field(default=None, metadata={"check": parse_address})
    serial: str | None = field(default=None, metadata={"check": _non_empty})
    runners: dict[str, str] = field(default_factory=dict, hash=False, metadata={"check": _runners})
    expected_model: str | None = field(default=None, metadata={"check": _non_empty})
    emulated: bool = False
    thermal_zone: str | None = field(default=None, metadata={"check": _non_empty})
    adb_key: str | None = field(default=None, metadata={"check": _non_empty})
    model_cache_mb: int = field(default=1000, metadata={"min": 0})
    description: str = ""

    @property
    def model_dir(self) -> str:
        """Where pushed models live on the device (see :mod:`mobilebench.device.cache`)."""
        return f"{self.workdir.rstrip('/')}/models"

    @property
    def endpoint(self) -> str:
        """Where the device is, for messages: ``host:port``, ``usb:SERIAL``, ``local``."""
        if self.transport == "adb-tcp":
            return self.address or "(no address)"
        if self.transport == "adb-usb":
            return f"usb:{self.serial}" if self.serial else "usb (first device)"
        return "local"


# ----------------------------------------------------------------------------- files


@dataclass
class _Layer:
    """The checked keys of one devices file, per profile."""

    doc: TomlFile
    path: Path | None
    profiles: dict[str, dict[str, Any]]


def _parse_layer(doc: TomlFile, path: Path | None) -> _Layer:
    profiles: dict[str, dict[str, Any]] = {}
    for name, table in doc.data.items():
        if not isinstance(table, dict):
            raise doc.error((name,), f"top-level key {name!r} is not a profile table; write it as [{name}] with keys below it")
        if not _NAME_RE.match(name):
            raise doc.error((name,), f"profile name {name!r} may only use letters, digits, '_' and '-'")
        runners = table.get("runners")
        for runtime, spec in runners.items() if isinstance(runners, dict) else ():
            if not isinstance(spec, str) or not spec.strip():  # named here to point at its own line
                raise doc.error((name, "runners", runtime), f"{name}.runners.{runtime} must be a non-empty string, got {spec!r}")
        values = read_table(doc, table, DeviceProfile, name, label=f"{name}.")
        if "adb_key" in values:
            key_path = Path(values["adb_key"]).expanduser()
            if path is not None and not key_path.is_absolute():
                key_path = path.parent / key_path
            values["adb_key"] = str(key_path)
        profiles[name] = values
    return _Layer(doc, path, profiles)


def _builtin_layer() -> _Layer:
    text = resources.files("mobilebench.device").joinpath("builtin_devices.toml").read_text(encoding="utf-8")
    return _parse_layer(parse_toml(text, BUILTIN_SOURCE), None)


def profile_files(extra_file: Path | None = None) -> list[Path]:
    """The user files searched, lowest priority first (whether or not they exist)."""
    files = [paths.config_dir() / "devices.toml", Path.cwd() / "devices.toml"]
    if extra_file is not None:
        files.append(Path(extra_file))
    return files


def load_profiles(extra_file: Path | None = None) -> dict[str, DeviceProfile]:
    """All profiles, built-ins overridden key by key by the user's files.

    ``extra_file`` (e.g. ``--devices-file``) must exist; the other files are optional.
    """
    layers = [_builtin_layer()]
    seen: set[Path] = set()
    for file in profile_files(extra_file):
        resolved = file.resolve()
        if resolved in seen:  # ./devices.toml may be the config file itself
            continue
        seen.add(resolved)
        if file.is_file() or (extra_file is not None and file == Path(extra_file)):
            layers.append(_parse_layer(read_toml(file, what="devices file"), file))

    merged: dict[str, dict[str, Any]] = {}
    last_layer: dict[str, _Layer] = {}
    for layer in layers:
        for name, values in layer.profiles.items():
            target = merged.setdefault(name, {})
            runners = {**target.get("runners", {}), **values.get("runners", {})}
            target.update(values, runners=runners)
            last_layer[name] = layer
    return {name: _build(name, values, last_layer[name]) for name, values in merged.items()}


def _build(name: str, values: dict[str, Any], layer: _Layer) -> DeviceProfile:
    doc = layer.doc
    transport = values.get("transport")
    if transport is None:
        raise doc.error((name,), f"profile {name!r} has no transport; add transport = \"adb-tcp\", \"adb-usb\" or \"local\"")
    if "cpus" not in values:
        raise doc.error((name,), f"profile {name!r} has no cpus; add the core(s) to pin, e.g. cpus = [7]")
    workdir = values.get("workdir")
    if transport == "local":
        workdir = str(Path(workdir).expanduser()) if workdir else str(paths.cache_dir() / "host")
    elif workdir is None:
        workdir = DEFAULT_ADB_WORKDIR
    elif workdir.startswith("~"):
        raise doc.error((name, "workdir"), f"{name}.workdir must be an absolute path on the device, got {workdir!r}")
    values = {
        **values,
        "workdir": workdir,
        "address": values.get("address") if transport == "adb-tcp" else None,
        "serial": values.get("serial") if transport == "adb-usb" else None,
    }
    return DeviceProfile(name=name, source=doc.source, **values)


def get_profile(name: str, *, address: str | None = None, extra_file: Path | None = None) -> DeviceProfile:
    """The profile called ``name``; ``address`` (``host:port``) switches it to ADB over TCP.

    Unknown names are an error suggesting close matches.
    """
    profiles = load_profiles(extra_file)
    if name not in profiles:
        raise UsageError(
            f"unknown device profile {name!r}; {suggest(name, profiles, noun='profiles')} "
            f"(add profiles in ./devices.toml or {paths.config_dir() / 'devices.toml'})"
        )
    profile = profiles[name]
    if address is None:
        return profile
    if profile.transport == "local":
        raise UsageError(f"profile {name!r} runs on this computer; --address only applies to ADB devices")
    try:
        normalized = parse_address(address)
    except ValueError as exc:
        raise UsageError(f"--address {exc}") from None
    return replace(profile, transport="adb-tcp", address=normalized, serial=None)
