"""Typed TOML: the one way devices.toml, model cards and recipe files are read.

A TOML table is checked against a frozen dataclass: every key must be one of its
fields and every value must have the field's type, so a typo or a string where a
number belongs is refused before anything runs. Errors are one line, naming the file
and line::

    devices.toml:12: pixel4.cpus must be a list of integers >= 0, got ['7']
    models/skipnet_m.toml:3: unknown key 'inptu_size'; did you mean 'input_size'?

Field types understood: ``str``, ``bool``, ``int``, ``float`` (an integer is accepted),
``Path``, ``tuple[T, ...]`` of those, ``dict`` (any table), ``Literal[...]``, and any of
them ``| None``. A field's ``metadata`` refines the check:

- ``"toml": False``: not a key of the file (derived by the caller, e.g. a name);
- ``"min"`` / ``"max"``: inclusive bounds of a number (or of each element of a tuple);
- ``"check"``: a callable ``value -> value`` run after the type check; it raises
  ``ValueError("must be ...")`` to refuse a value, and may normalise it.

``tomllib`` reports line numbers for syntax errors only, so :func:`find_line` finds a
key's line by scanning the text (for error messages).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilebench.errors import UsageError
from mobilebench.text import suggest


@dataclass(frozen=True)
class TomlFile:
    """A parsed TOML document, with its text for locating keys in error messages.

    ``source`` is how the file is named in messages (its path, or e.g. ``built-in``).
    """

    source: str
    text: str
    data: dict[str, Any]

    def where(self, *keys: str) -> str:
        """``source:line`` of the key or table at ``keys`` (just ``source`` if not found)."""
        line = find_line(self.text, keys) if keys else None
        return f"{self.source}:{line}" if line else self.source

    def error(self, keys: tuple[str, ...], message: str) -> UsageError:
        return UsageError(f"{self.where(*keys)}: {message}")


def parse_toml(text: str, source: str) -> TomlFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends with "(at line N, column M)"
        raise UsageError(f"{source}: invalid TOML: {exc}") from None
    return TomlFile(source=source, text=text, data=data)


def read_toml(path: str | Path, *, what: str = "file") -> TomlFile:
    """Read and parse a TOML file; a missing, unreadable or malformed file is one line
    naming ``what`` it is (``model card``, ``devices file``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return parse_toml(text, str(path))


def table_fields(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of dataclass ``cls`` that are TOML keys."""
    return {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("toml", True)}


def read_table(doc: TomlFile, table: Any, cls: type, *keys: str, label: str = "") -> dict[str, Any]:
    """Check ``table`` (the value found at ``keys`` in ``doc``; no keys: the document)
    against the TOML fields of dataclass ``cls``; returns the keys present, validated and
    converted, by field name. ``label`` prefixes key names in messages (``pixel4.``)."""
    if not isinstance(table, dict):
        raise doc.error(keys, f"{label.rstrip('.') or 'this'} must be a table, got {table!r}")
    known = table_fields(cls)
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            where = f" in [{'.'.join(keys)}]" if keys else ""
            raise doc.error((*keys, key), f"unknown key {key!r}{where}; {suggest(key, known, noun='keys')}")
        spec = known[key]
        try:
            value = _convert(value, hints[key], spec.metadata)
            if check := spec.metadata.get("check"):
                value = check(value)
        except ValueError as exc:
            raise doc.error((*keys, key), f"{label}{key} {exc}") from None
        out[key] = value
    return out


def _convert(value: Any, annotation: Any, metadata: Mapping[str, Any]) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(value, options[0], metadata)
        raise TypeError(f"unsupported TOML field type {annotation!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        element = args[0]
        if not isinstance(value, list):
            raise ValueError(f"must be a list of {_describe(element, metadata, plural=True)}, got {value!r}")
        try:
            return tuple(_convert(v, element, metadata) for v in value)
        except ValueError:
            raise ValueError(f"must be a list of {_describe(element, metadata, plural=True)}, got {value!r}") from None
    if annotation is dict or origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ValueError(f"must be a table, got {value!r}")
        return dict(value)
    if annotation is Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"must be a path (a non-empty string), got {value!r}")
        return Path(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if annotation in (int, float):
        ok = isinstance(value, int) or (annotation is float and isinstance(value, float))
        if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"must be {_describe(annotation, metadata)}, got {value!r}")
        low, high = metadata.get("min", -math.inf), metadata.get("max", math.inf)
        if not low <= value <= high:
            raise ValueError(f"must be {_describe(annotation, metadata)}, got {value!r}")
        return annotation(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported TOML field type {annotation!r}")


def _describe(annotation: Any, metadata: Mapping[str, Any], *, plural: bool = False) -> str:
    if annotation not in (int, float):
        return {str: "strings", bool: "booleans", Path: "paths"}.get(annotation, str(annotation))
    if annotation is int:
        noun = "integers" if plural else "an integer"
    else:
        noun = "numbers" if plural else "a number"
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and high is not None:
        return f"{noun} in [{low:g}, {high:g}]"
    if low is not None:
        return f"{noun} >= {low:g}"
    if high is not None:
        return f"{noun} <= {high:g}"
    return noun


# -- line numbers, for messages --------------------------------------------------------

_HEADER_RE = re.compile(r"^\s*\[(?!\[)\s*(.+?)\s*\]\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")
_DOTTED_PART_RE = re.compile(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)')


def _split_dotted(text: str) -> tuple[str, ...]:
    """Split a TOML dotted key (``a."b.c".d``) into its parts."""
    return tuple(next(g for g in m.groups() if g is not None) for m in _DOTTED_PART_RE.finditer(text))


def find_line(text: str, keys: tuple[str, ...]) -> int | None:
    """1-based line where the key or table ``keys`` is defined in TOML ``text``.

    Handles ``[table]`` headers, ``key = value`` lines and dotted keys; a key inside an
    inline table gives its parent's line. None when nothing matches.
    """
    best: tuple[int, int] | None = None  # (matched depth, line)
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER_RE.match(line):
            current = _split_dotted(header.group(1))
            candidate = current
        elif key := _KEY_RE.match(line):
            candidate = current + _split_dotted(key.group(1))
        else:
            continue
        depth = 0
        for a, b in zip(candidate, keys):
            if a != b:
                break
            depth += 1
        if depth == len(keys) and len(candidate) >= len(keys):
            return number
        if depth == len(candidate) and depth > 0 and (best is None or depth > best[0]):
            best = (depth, number)
    return best[1] if best else None
