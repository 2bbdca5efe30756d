"""``mobilebench devices``: list device profiles; with --check, connect and show their
state; with --clean, empty their model caches."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mobilebench.cli.parsing import add_format_option, bounded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="profiles to show (default: all)")
    parser.add_argument("--check", action="store_true", help="connect to each device and print its state")
    parser.add_argument(
        "--clean", action="store_true", help="connect to each device and remove its pushed models (<workdir>/models)"
    )
    parser.add_argument("--address", metavar="HOST:PORT", help="HOST:PORT to reach the named profile over ADB/TCP")
    parser.add_argument("--devices-file", metavar="PATH", type=Path, help="extra devices.toml, read last (highest priority)")
    parser.add_argument("--timeout", metavar="S", type=bounded(float, minimum=0.1, maximum=3600), default=5.0, help="seconds to wait for each device")
    add_format_option(parser, ("table", "csv", "json"), help="csv and json: every field")


def run(args: argparse.Namespace) -> None:
    """List device profiles; with --check, connect to each and show its state.

    Profiles are the built-in ones, overridden key by key by <config>/devices.toml,
    ./devices.toml and --devices-file. --check reads each device's model, Android
    version, ABI, governor, frequency and temperature; on an arm64 device it also pushes
    the runner that fits (the NDK build, else the linux-arm64 bundle) and starts its
    --version, to report whether it can run there and, if not, why (exec not permitted,
    a system call refused, page size). --clean removes the models pushed to each device
    (kept under the profile's model_cache_mb otherwise).
    """
    from mobilebench.device import connect, get_profile, load_profiles
    from mobilebench.device.cache import clean_model_cache
    from mobilebench.errors import MobilebenchError, UsageError

    names, address = args.names, args.address
    profiles = load_profiles(args.devices_file)
    if names and address is not None and len(names) > 1:
        raise UsageError("--address applies to one profile; name just one")
    if names:
        selected = [get_profile(n, address=address, extra_file=args.devices_file) for n in names]
    elif address is not None:
        raise UsageError("--address needs one profile name, e.g. `mobilebench devices pixel4 --address 192.168.1.20:5555 --check`")
    else:
        selected = list(profiles.values())

    rows: list[dict[str, Any]] = []
    failed: list[str] = []
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
        if args.check or args.clean:
            row["status"], row["state"] = "ok", None
            try:
                with connect(profile, timeout_s=args.timeout) as device:
                    if args.check:
                        state = device.read_state(profile.cpus[0])
                        row["state"] = state.to_dict()
                        if state.abi == "arm64-v8a":
                            row["runner_check"] = _check_runner(device, state.abi)
                            if row["runner_check"]["status"] != "ok":
                                raise MobilebenchError(row["runner_check"]["detail"])
                    if args.clean:
                        removed = clean_model_cache(device)
                        row["removed_models"] = len(removed)
                        row["removed_bytes"] = sum(m.size for m in removed)
            except MobilebenchError as exc:
                failed.append(profile.name)
                row["status"] = str(exc)
        rows.append(row)

    _print(rows, args.format, args.check, args.clean)
    # Profiles named on the command line are expected to answer (scripts check the exit
    # status); a plain `devices --check` surveys every profile, most of them not attached.
    if (args.check or args.clean) and names and failed:
        what = "the check" if args.check else "the clean-up"
        raise MobilebenchError(f"{what} failed for {len(failed)} of {len(rows)} device(s): {', '.join(failed)}")


def _check_runner(device, abi: str) -> dict[str, Any]:
    """Push the runner build that fits ``abi`` (as a profile would) and start its
    ``--version`` there: ``{"build", "status": "ok" | "failed", "detail"}``."""
    from mobilebench.bench.runner_builds import BUILD_COMMANDS, describe_build, plan_runner
    from mobilebench.device.base import start_failure
    from mobilebench.errors import MobilebenchError

    profile = device.profile
    try:
        plan = plan_runner(profile, "executorch", abi=abi)
    except MobilebenchError as exc:
        return {"build": None, "status": "failed", "detail": str(exc)}
    workdir = profile.workdir.rstrip("/")
    for file in plan.files:
        device.push_if_changed(file.local, f"{workdir}/{file.remote}", mode=file.mode)
    result = device.run([*plan.launcher, plan.device_binary, "--version"], timeout_s=120)
    reason = start_failure(result)
    if reason is None and '"event":"version"' not in result.stdout.replace(" ", ""):
        reason = f"it started but printed no version ({result.stdout.strip()[-200:] or 'no output'})"
    if reason is None:
        return {"build": plan.build, "status": "ok", "detail": result.stdout.strip().splitlines()[-1]}
    what = describe_build(plan.build) if plan.build else plan.device_binary
    detail = f"{what} cannot run on {profile.name!r}: {reason}"
    if plan.build == "linux-arm64":
        detail += f"; build the runner with the NDK instead: {BUILD_COMMANDS['android-arm64-v8a']}"
    return {"build": plan.build, "status": "failed", "detail": detail}


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
        "abi": state.get("abi") or "",
        "runner": (row.get("runner_check") or {}).get("status", ""),
        "rooted": "" if state.get("rooted") is None else str(state["rooted"]).lower(),
        "emulated": str(bool(state.get("emulated")) or bool(row["emulated"])).lower(),
        "unavailable": " ".join(state.get("unavailable", [])),
        **{key: row[key] for key in ("removed_models", "removed_bytes") if key in row},
    }


# The columns of the table format; csv and json carry every field.
_TABLE_COLUMNS = ("name", "transport", "endpoint", "cpus", "emulated", "source")
_CHECK_TABLE_COLUMNS = ("name", "status", "model", "android", "abi", "runner", "cpu", "governor", "cur_mhz", "max_mhz", "cpu_temp_c", "free_gb", "rooted", "emulated")
_CLEAN_TABLE_COLUMNS = ("name", "status", "removed_models", "removed_bytes")


def _print(rows: list[dict[str, Any]], fmt: str, check: bool, clean: bool) -> None:
    from mobilebench.cli.console import emit
    from mobilebench.report.formats import to_json

    if fmt == "json":
        print(to_json(rows), end="")  # the rows as they are, the device state nested
        return
    connected = check or clean
    flat = [_summary(r) for r in rows] if connected else rows
    if fmt == "csv":
        if flat:
            emit(list(flat[0]), flat, "csv")
        return
    if not connected:
        emit(_TABLE_COLUMNS, flat, "table", title="device profiles")
        return
    # The status cell says ok or error; the errors, long sentences, follow the table.
    cells = [item | {"status": "ok" if item["status"] == "ok" else "error"} for item in flat]
    columns = _CHECK_TABLE_COLUMNS if check else ()
    columns += tuple(c for c in _CLEAN_TABLE_COLUMNS if c not in columns) if clean else ()
    emit(columns, [{c: item.get(c, "") for c in columns} for item in cells], "table", title="device state" if check else "model caches")
    for item in flat:
        if item["status"] != "ok":
            print(f"{item['name']}: {item['status']}")
