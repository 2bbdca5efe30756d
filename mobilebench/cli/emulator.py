"""``mobilebench emulator``: serve an emulated phone over ADB on 127.0.0.1 until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class AuthMode(str, Enum):
    keys = "keys"
    none = "none"


def command(
    root: Annotated[Path, typer.Option("--root", help="Directory holding the phone's files (/data lives in ROOT/data).")],
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0 picks a free one).", min=0, max=65535)] = 5555,
    profile: Annotated[str, typer.Option("--profile", help="Phone to emulate: pixel4 or pixel3.")] = "pixel4",
    auth: Annotated[AuthMode, typer.Option("--auth", help="keys: only accepted RSA keys get in; none: anyone.")] = AuthMode.keys,
    accept_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--accept-key",
            help="adbkey.pub to accept (repeatable). Default: <config dir>/adbkey.pub and ~/.android/adbkey.pub.",
        ),
    ] = None,
    rooted: Annotated[bool, typer.Option("--rooted", help="Run commands as uid 0 (a rooted phone).")] = False,
    drop_after_bytes: Annotated[
        int | None, typer.Option("--drop-after-bytes", help="Fault: drop the connection after N bytes (once).", min=1)
    ] = None,
    fail_next_push: Annotated[
        str | None, typer.Option("--fail-next-push", help="Fault: refuse the next push with this message.")
    ] = None,
    reply_delay_ms: Annotated[float, typer.Option("--reply-delay-ms", help="Fault: delay every reply.", min=0)] = 0.0,
    hang_next_command: Annotated[bool, typer.Option("--hang-next-command", help="Fault: the next command never returns.")] = False,
    crash_next_command: Annotated[
        bool, typer.Option("--crash-next-command", help="Fault: the next command's program dies with SIGSEGV (139).")
    ] = False,
    crash_match: Annotated[
        str | None, typer.Option("--crash-match", help="With --crash-next-command: only the program with this name (e.g. mobilebench_runner).")
    ] = None,
    hot_zone: Annotated[
        list[str] | None, typer.Option("--hot-zone", help="Fault: report ZONE=TEMP_C, e.g. cpu-1-6-usr=95 (repeatable).")
    ] = None,
    ambient_c: Annotated[float, typer.Option("--ambient-c", help="Thermal model: ambient temperature.")] = 30.0,
    heat_rate: Annotated[float, typer.Option("--heat-rate", help="Thermal model: C/s a fully busy core gains.")] = 2.0,
    tau_s: Annotated[float, typer.Option("--tau-s", help="Thermal model: cooling time constant in seconds.", min=0.01)] = 30.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not log connections and faults.")] = False,
) -> None:
    """Serve an emulated phone over the real ADB protocol (adb-shell and `adb` both work).

    Prints `emulator listening on 127.0.0.1:PORT` once ready; stop it with Ctrl-C or SIGTERM.
    Results measured on it are always labelled emulated.
    """
    from mobilebench.device.emulator import FaultPlan, PhoneEmulator, ThermalModel
    from mobilebench.errors import UsageError

    hot: dict[str, float] = {}
    for item in hot_zone or []:
        try:
            zone, temp = FaultPlan.parse_hot_zone(item)
        except ValueError as exc:
            raise UsageError(f"--hot-zone: {exc}") from None
        hot[zone] = temp
    faults = FaultPlan(
        drop_after_bytes=drop_after_bytes,
        fail_next_push=fail_next_push,
        reply_delay_s=reply_delay_ms / 1000.0,
        hang_next_command=hang_next_command,
        crash_next_command=crash_next_command,
        crash_match=crash_match,
        hot_zones=hot,
    )
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    root.mkdir(parents=True, exist_ok=True)
    emulator = PhoneEmulator(
        root,
        profile=profile,
        port=port,
        auth=auth.value,
        accepted_keys=accept_key or (),
        faults=faults,
        thermal=ThermalModel(ambient_c=ambient_c, heat_rate_c_per_s=heat_rate, tau_s=tau_s),
        rooted=rooted,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emulator:
        print(f"emulator listening on {emulator.address} (phone {profile}, files in {emulator.root.root})", flush=True)
        while not stop.wait(0.5):
            pass
    print("emulator stopped", flush=True)
