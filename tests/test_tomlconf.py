"""mobilebench.tomlconf: TOML tables checked against dataclasses, one-line errors with lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from mobilebench.errors import UsageError
from mobilebench.tomlconf import find_line, parse_toml, read_table, read_toml


def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"must be even, got {value}")
    return value


@dataclass(frozen=True)
class Phone:
    name: str = field(metadata={"toml": False})
    transport: Literal["adb-tcp", "local"] = "local"
    cpus: tuple[int, ...] = field(default=(), metadata={"min": 0})
    emulated: bool = False
    scale: float = 1.0
    port: int = field(default=2, metadata={"min": 1, "max": 65535, "check": _even})
    key: Path | None = None
    runners: dict = field(default_factory=dict)


TEXT = """\
# a comment
[pixel4]
transport = "adb-tcp"
cpus = [7]
scale = 2
key = "keys/adb"
runners = { executorch = "mobilebench_runner" }

[host]
emulated = true
"""


def test_a_valid_table_is_converted_by_field_type() -> None:
    doc = parse_toml(TEXT, "devices.toml")
    values = read_table(doc, doc.data["pixel4"], Phone, "pixel4", label="pixel4.")
    assert values == {
        "transport": "adb-tcp",
        "cpus": (7,),
        "scale": 2.0,
        "key": Path("keys/adb"),
        "runners": {"executorch": "mobilebench_runner"},
    }
    assert isinstance(values["scale"], float)
    assert read_table(doc, doc.data["host"], Phone, "host") == {"emulated": True}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('cpus = ["7"]', r"devices.toml:3: p.cpus must be a list of integers >= 0, got \['7'\]"),
        ("cpus = [-1]", r"devices.toml:3: p.cpus must be a list of integers >= 0"),
        ('transport = "usb"', r"devices.toml:3: p.transport must be one of adb-tcp, local, got 'usb'"),
        ('emulated = "yes"', r"devices.toml:3: p.emulated must be true or false, got 'yes'"),
        ("scale = nan", r"devices.toml:3: p.scale must be a number, got nan"),
        ("port = 70000", r"devices.toml:3: p.port must be an integer in \[1, 65535\], got 70000"),
        ("port = 3", r"devices.toml:3: p.port must be even, got 3"),
        ("port = true", r"devices.toml:3: p.port must be an integer in \[1, 65535\], got True"),
        ("runners = 3", r"devices.toml:3: p.runners must be a table, got 3"),
        ("cpu = [7]", r"devices.toml:3: unknown key 'cpu' in \[p\]; did you mean 'cpus'\?"),
        ("name = 'x'", r"unknown key 'name'"),  # not a TOML key
    ],
)
def test_bad_values_are_one_line_naming_file_line_and_key(line: str, message: str) -> None:
    doc = parse_toml(f"[p]\n# x\n{line}\n", "devices.toml")
    with pytest.raises(UsageError, match=message) as info:
        read_table(doc, doc.data["p"], Phone, "p", label="p.")
    assert "\n" not in str(info.value)


def test_files_that_cannot_be_read_or_parsed_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"model card .*nope.toml does not exist"):
        read_toml(tmp_path / "nope.toml", what="model card")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not UTF-8"):
        read_toml(bad)
    bad.write_text("a = \n")
    with pytest.raises(UsageError, match=r"bad.toml: invalid TOML: .*line 1"):
        read_toml(bad)


def test_find_line_handles_headers_dotted_keys_and_inline_tables() -> None:
    assert find_line(TEXT, ("pixel4",)) == 2
    assert find_line(TEXT, ("pixel4", "cpus")) == 4
    assert find_line(TEXT, ("pixel4", "runners", "executorch")) == 7  # inside an inline table
    assert find_line(TEXT, ("host", "emulated")) == 10
    assert find_line('a."b.c".d = 1\n', ("a", "b.c", "d")) == 1
    assert find_line(TEXT, ("nothing",)) is None
