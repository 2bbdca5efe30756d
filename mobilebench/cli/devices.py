"""``mobilebench devices``: list device profiles; with --check, connect and show their state."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def command(
    names: Annotated[list[str] | None, typer.Argument(help="Profiles to show (default: all).", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Connect to each device and print its state.")] = False,
    address: Annotated[
        str | None, typer.Option("--address", help="HOST:PORT to reach the named profile over ADB/TCP.")
    ] = None,
    devices_file: Annotated[
        Path | None, typer.Option("--devices-file", help="Extra devices.toml, read last (highest priority).")
    ] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each device.", min=0.1)] = 5.0,
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
) -> None:
    """List device profiles (built-in, <config>/devices.toml, ./devices.toml); --check
    connects to each and reads model, Android version, governor, frequency, temperature."""
    from mobilebench.device import connect, get_profile, load_profiles
    from mobilebench.errors import MobilebenchError, UsageError

    profiles = load_profiles(devices_file)
    if names and address is not None and len(names) > 1:
        raise UsageError("--address applies to one profile; name just one")
    if names:
        selected = [get_profile(n, address=address, extra_file=devices_file) for n in names]
    elif address is not None:
        raise UsageError("--address needs one profile name, e.g. `mobilebench devices pixel4 --address 192.168.1.20:5555 --check`")
    else:
        selected = list(profiles.values())

    rows: list[dict[str, Any]] = []
    failures = 0
    for profile in selected:
        row: dict[str, Any] = {
            "name": profile.name,
            "transport": profile.transport,
            "endpoint": profile.endpoint,
            "workdir": profile.workdir,
            "cpus": ",".join(str(c) for c in profile.cpus),
            "runners": ",".join(f"{k}={v}" for k, v in profile.runners.items()),
            "emulated": profile.emulated,
            "source": profile.source,
        }
        if check:
            try:
                with connect(profile, timeout_s=timeout_s) as device:
                    state = device.read_state(profile.cpus[0])
                row["status"] = "ok"
                row["state"] = state.to_dict()
            except MobilebenchError as exc:
                failures += 1
                row["status"] = str(exc)
                row["state"] = None
        rows.append(row)

    _print(rows, output, check)
    if check and names and failures:
        raise typer.Exit(1)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    """The flat columns shown by --check in table and CSV form."""
    state = row.get("state") or {}
    mhz = lambda khz: f"{khz / 1000:.0f}" if khz else ""  # noqa: E731
    return {
        "name": row["name"],
        "endpoint": row["endpoint"],
        "status": row["status"],
        "model": state.get("model") or "",
        "android": state.get("android_version") or "",
        "board": state.get("board") or "",
        "cpu": state.get("cpu", ""),
        "governor": state.get("governor") or "",
        "cur_mhz": mhz(state.get("cur_freq_khz")),
        "max_mhz": mhz(state.get("max_freq_khz")),
        "cpu_temp_c": "" if state.get("cpu_temp_c") is None else f"{state['cpu_temp_c']:.1f}",
        "free_gb": "" if state.get("free_bytes") is None else f"{state['free_bytes'] / 1e9:.1f}",
        "rooted": "" if state.get("rooted") is None else str(state["rooted"]).lower(),
        "emulated": str(bool(state.get("emulated")) or bool(row["emulated"])).lower(),
        "unavailable": " ".join(state.get("unavailable", [])),
    }


# Columns of the rich table (the CSV and JSON forms carry every field).
_TABLE_COLUMNS = ("name", "transport", "endpoint", "cpus", "emulated", "source")
_CHECK_TABLE_COLUMNS = ("name", "status", "model", "android", "cpu", "governor", "cur_mhz", "max_mhz", "cpu_temp_c", "free_gb", "rooted", "emulated")


def _print(rows: list[dict[str, Any]], output: OutputFormat, check: bool) -> None:
    if output is OutputFormat.json:
        print(json.dumps(rows, indent=2))
        return
    flat = [_summary(r) for r in rows] if check else rows
    if output is OutputFormat.csv:
        if flat:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(flat[0]))
            writer.writeheader()
            writer.writerows(flat)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    columns = _CHECK_TABLE_COLUMNS if check else _TABLE_COLUMNS
    table = Table(title="device state" if check else "device profiles")
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in flat:
        cells = {**item, "status": "ok" if item.get("status") == "ok" else "error"} if check else item
        table.add_row(*(str(cells[c]) for c in columns))
    console.print(table)
    from rich.text import Text

    for item in flat:
        if check and item["status"] != "ok":
            console.print(Text.assemble((item["name"], "bold"), ": ", item["status"]), highlight=False)
