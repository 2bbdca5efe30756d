"""Device profiles: how to reach a device and how to benchmark on it.

Profiles come from TOML files, one table per profile, searched in this order (later files
override single keys of earlier ones, or add profiles):

1. the built-ins shipped with the package (``builtin_devices.toml``: pixel4, pixel3, host,
   emulator),
2. ``<config dir>/devices.toml`` (see :func:`mobilebench.paths.config_dir`),
3. ``./devices.toml`` in the current directory (the project's file),
4. an explicit file given on the command line (``extra_file``).

Unknown keys and bad values are errors naming the file and line. ``tomllib`` does not
report line numbers for values, so :func:`_find_line` locates a key by scanning the text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from mobilebench import paths
from mobilebench.errors import UsageError

TRANSPORTS = ("adb-tcp", "adb-usb", "local")
DEFAULT_ADB_WORKDIR = "/data/local/tmp/mobilebench"
DEFAULT_ADB_PORT = 5555
BUILTIN_SOURCE = "built-in"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class DeviceProfile:
    """One device as the benchmark sees it.

    ``cpus`` are the device's CPU numbers a benchmark is pinned to (e.g. ``(7,)``, the
    Pixel 4's prime core). ``runners`` maps a runtime (``executorch``, ``onnx``: the
    names ``mobilebench profile --runtime`` takes) to the runner's name, optionally
    ``name:PATH`` (see :func:`mobilebench.bench.session.plan_runner`). ``source`` is the file that last set a key of this profile
    (``built-in`` for the package's own file).
    """

    name: str
    transport: str
    address: str | None
    serial: str | None
    workdir: str
    cpus: tuple[int, ...]
    runners: dict[str, str] = field(hash=False)
    expected_model: str | None
    emulated: bool
    source: str
    thermal_zone: str | None = None
    adb_key: str | None = None
    description: str = ""

    @property
    def endpoint(self) -> str:
        """Where the device is, for messages: ``host:port``, ``usb:SERIAL``, ``local``."""
        if self.transport == "adb-tcp":
            return self.address or "(no address)"
        if self.transport == "adb-usb":
            return f"usb:{self.serial}" if self.serial else "usb (first device)"
        return "local"


# ----------------------------------------------------------------------------- values


class _BadValue(ValueError):
    """A value failed validation; the message says what was expected."""


def parse_address(text: str) -> str:
    """Normalise ``host[:port]`` (IPv6 as ``[addr]:port``); the port defaults to 5555."""
    text = text.strip()
    if not text:
        raise _BadValue("an address must be HOST:PORT, got an empty string")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise _BadValue(f"an address must be HOST:PORT or [IPv6]:PORT, got {text!r}")
        host_out = f"[{host}]"
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        host_out = host
    elif ":" in text:
        raise _BadValue(f"write IPv6 addresses as [ADDR]:PORT, got {text!r}")
    else:
        host, port_text, host_out = text, "", text
    if not host or any(c.isspace() for c in host):
        raise _BadValue(f"an address must be HOST:PORT, got {text!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _BadValue(f"port must be a number from 1 to 65535, got {port_text!r} in {text!r}")
        port = int(port_text)
    else:
        port = DEFAULT_ADB_PORT
    return f"{host_out}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """``"1.2.3.4:5555"`` -> ``("1.2.3.4", 5555)``; IPv6 brackets are removed."""
    host, _, port = parse_address(address).rpartition(":")
    return host.strip("[]"), int(port)


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BadValue(f"must be a non-empty string, got {value!r}")
    return value


def _transport(value: Any) -> str:
    if value not in TRANSPORTS:
        raise _BadValue(f"must be one of {', '.join(TRANSPORTS)}, got {value!r}")
    return value


def _address(value: Any) -> str:
    return parse_address(_string(value))


def _workdir(value: Any) -> str:
    text = _string(value)
    if not (text.startswith("/") or text.startswith("~")):
        raise _BadValue(f"must be an absolute path, got {text!r}")
    if "\n" in text or "\0" in text:
        raise _BadValue("must not contain newlines or NUL bytes")
    return text.rstrip("/") or "/"


def _cpus(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in value)
    ):
        raise _BadValue(f"must be a non-empty list of CPU numbers like [7], got {value!r}")
    if len(set(value)) != len(value):
        raise _BadValue(f"lists a CPU twice: {value!r}")
    return tuple(value)


#: Other spellings of a runtime accepted in ``runners`` tables -> the runtime's name.
RUNTIME_ALIASES = {"onnxruntime": "onnx"}


def _runners(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _BadValue(f'must be a table like {{ executorch = "mobilebench_runner" }}, got {value!r}')
    out: dict[str, str] = {}
    for runtime, spec in value.items():
        if not isinstance(spec, str) or not spec.strip():
            raise _BadValue(f"runner for {runtime!r} must be a non-empty string, got {spec!r}")
        out[RUNTIME_ALIASES.get(runtime, runtime)] = spec
    return out


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _BadValue(f"must be true or false, got {value!r}")
    return value


# key -> validator. Every key a devices.toml may contain; anything else is an error.
_FIELDS: dict[str, Callable[[Any], Any]] = {
    "description": _string,
    "transport": _transport,
    "address": _address,
    "serial": _string,
    "workdir": _workdir,
    "cpus": _cpus,
    "runners": _runners,
    "expected_model": _string,
    "emulated": _bool,
    "thermal_zone": _string,
    "adb_key": _string,
}


# ----------------------------------------------------------------------------- lines


def _split_dotted(text: str) -> tuple[str, ...]:
    """Split a TOML dotted key (``a."b.c".d``) into its parts."""
    return tuple(
        next(g for g in match.groups() if g is not None)
        for match in re.finditer(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)', text)
    )


# Only error messages look for line numbers: compiled (and cached by re) on first use.
_HEADER_RE = r"^\s*\[(?!\[)\s*(.+?)\s*\]\s*(#.*)?$"
_KEY_RE = r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*="


def _find_line(text: str, path: tuple[str, ...]) -> int | None:
    """1-based line where the key or table ``path`` is defined in TOML ``text``.

    Handles ``[table]`` headers, ``key = value`` lines, dotted keys and inline tables
    (by finding their parent). Returns the line of the closest enclosing definition when
    the exact key cannot be found, and None when nothing matches.
    """
    best: tuple[int, int] | None = None  # (matched depth, line)
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := re.match(_HEADER_RE, line):
            current = _split_dotted(header.group(1))
            candidate = current
        elif key := re.match(_KEY_RE, line):
            candidate = current + _split_dotted(key.group(1))
        else:
            continue
        depth = 0
        for a, b in zip(candidate, path):
            if a != b:
                break
            depth += 1
        if depth == len(path) and len(candidate) >= len(path):
            return number
        if depth == len(candidate) and depth > 0 and (best is None or depth > best[0]):
            best = (depth, number)
    return best[1] if best else None


# ----------------------------------------------------------------------------- files


@dataclass
class _Layer:
    """The validated contents of one devices file."""

    source: str  # file path as shown to the user, or "built-in"
    path: Path | None
    profiles: dict[str, dict[str, Any]]
    lines: dict[str, int | None]  # profile name -> line of its table


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


def _parse_layer(text: str, source: str, path: Path | None) -> _Layer:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line N, column M)".
        raise UsageError(f"{source}: invalid TOML: {exc}") from None

    def at(*path: str) -> str:  # "file:line", looked up only for an error message
        return _where(source, _find_line(text, path))

    profiles: dict[str, dict[str, Any]] = {}
    lines: dict[str, int | None] = {}
    for name, table in data.items():
        line = _find_line(text, (name,))
        if not isinstance(table, dict):
            raise UsageError(
                f"{_where(source, line)}: top-level key {name!r} is not a profile table; "
                f"write it as [{name}] with keys below it"
            )
        if not _NAME_RE.match(name):
            raise UsageError(f"{_where(source, line)}: profile name {name!r} may only use letters, digits, '_' and '-'")
        values: dict[str, Any] = {}
        for key, raw in table.items():
            if key not in _FIELDS:
                import difflib  # error path only

                close = difflib.get_close_matches(key, _FIELDS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise UsageError(
                    f"{at(name, key)}: unknown key {key!r} in profile {name!r}{hint} "
                    f"(known keys: {', '.join(sorted(_FIELDS))})"
                )
            where = (name, key)
            try:
                if key == "runners" and isinstance(raw, dict):
                    for runtime, spec in raw.items():  # point at the runner's own line
                        try:
                            _runners({runtime: spec})
                        except _BadValue:
                            where = (name, key, runtime)
                            raise
                value = _FIELDS[key](raw)
            except _BadValue as exc:
                raise UsageError(f"{at(*where)}: {name}.{key} {exc}") from None
            if key == "adb_key":
                key_path = Path(value).expanduser()
                if path is not None and not key_path.is_absolute():
                    key_path = path.parent / key_path
                value = str(key_path)
            values[key] = value
        profiles[name] = values
        lines[name] = line
    return _Layer(source, path, profiles, lines)


def _read_layer(path: Path) -> _Layer:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise UsageError(f"cannot read device profiles from {path}: {exc.strerror or exc}") from None
    return _parse_layer(text, str(path), path)


def _builtin_layer() -> _Layer:
    # Next to this module (importlib.resources would cost ~6 ms of every start).
    text = Path(__file__).with_name("builtin_devices.toml").read_text(encoding="utf-8")
    return _parse_layer(text, BUILTIN_SOURCE, None)


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
            layers.append(_read_layer(file))

    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, tuple[str, int | None]] = {}
    for layer in layers:
        for name, values in layer.profiles.items():
            target = merged.setdefault(name, {})
            for key, value in values.items():
                if key == "runners":
                    target["runners"] = {**target.get("runners", {}), **value}
                else:
                    target[key] = value
            origin[name] = (layer.source, layer.lines[name])

    return {name: _build(name, values, *origin[name]) for name, values in merged.items()}


def _build(name: str, values: dict[str, Any], source: str, line: int | None) -> DeviceProfile:
    where = _where(source, line)
    transport = values.get("transport")
    if transport is None:
        raise UsageError(f"{where}: profile {name!r} has no transport; add transport = \"adb-tcp\", \"adb-usb\" or \"local\"")
    if "cpus" not in values:
        raise UsageError(f"{where}: profile {name!r} has no cpus; add the core(s) to pin, e.g. cpus = [7]")
    workdir = values.get("workdir")
    if transport == "local":
        workdir = str(Path(workdir).expanduser()) if workdir else str(paths.cache_dir() / "host")
    elif workdir is None:
        workdir = DEFAULT_ADB_WORKDIR
    elif workdir.startswith("~"):
        raise UsageError(f"{where}: {name}.workdir must be an absolute path on the device, got {workdir!r}")
    return DeviceProfile(
        name=name,
        transport=transport,
        address=values.get("address") if transport == "adb-tcp" else None,
        serial=values.get("serial") if transport == "adb-usb" else None,
        workdir=workdir,
        cpus=values["cpus"],
        runners=dict(values.get("runners", {})),
        expected_model=values.get("expected_model"),
        emulated=values.get("emulated", False),
        source=source,
        thermal_zone=values.get("thermal_zone"),
        adb_key=values.get("adb_key"),
        description=values.get("description", ""),
    )


def get_profile(name: str, *, address: str | None = None, extra_file: Path | None = None) -> DeviceProfile:
    """The profile called ``name``; ``address`` (``host:port``) switches it to ADB over TCP.

    Unknown names are an error suggesting close matches.
    """
    profiles = load_profiles(extra_file)
    if name not in profiles:
        import difflib  # error path only

        close = difflib.get_close_matches(name, profiles, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(
            f"unknown device profile {name!r}{hint} (known: {', '.join(sorted(profiles))}; "
            f"add profiles in ./devices.toml or {paths.config_dir() / 'devices.toml'})"
        )
    profile = profiles[name]
    if address is None:
        return profile
    if profile.transport == "local":
        raise UsageError(f"profile {name!r} runs on this computer; --address only applies to ADB devices")
    try:
        normalized = parse_address(address)
    except _BadValue as exc:
        raise UsageError(f"--address: {exc}") from None
    return replace(profile, transport="adb-tcp", address=normalized, serial=None)
