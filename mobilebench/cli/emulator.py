"""``mobilebench emulator``: serve an emulated phone over ADB on 127.0.0.1 until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from mobilebench.cli.parsing import bounded
from mobilebench.device.emulator import ABIS, PHONES, FaultPlan, PhoneEmulator, ThermalModel
from mobilebench.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        type=Path,
        required=True,
        help="folder holding the phone's files (/data lives in DIR/data): a new or empty folder, or one an "
        "earlier emulator made (marked by DIR/.mobilebench-phone); nothing else in it is ever deleted",
    )
    parser.add_argument("--port", metavar="PORT", type=bounded(int, minimum=0, maximum=65535), default=5555, help="TCP port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--profile", metavar="PHONE", choices=sorted(PHONES), default="pixel4", help="phone to emulate: " + ", ".join(sorted(PHONES)))
    parser.add_argument(
        "--abi",
        choices=ABIS,
        default=ABIS[0],
        help="what the phone runs: this computer's programs (fast), or arm64-v8a ones under qemu-aarch64-static "
        "-cpu cortex-a76 (100-500x slower: its latencies are not a phone's); an arm64 phone refuses x86-64 programs",
    )
    parser.add_argument(
        "--host-cpu",
        metavar="N",
        type=bounded(int, minimum=0),
        help="this computer's CPU that runs everything pinned on the phone (its benchmark core): give each emulated "
        "phone its own, or two pinned runners on one CPU measure each other (default: phone CPUs spread over all)",
    )
    parser.add_argument(
        "--auth",
        choices=("keys", "none"),
        default="keys",
        help="keys: only accepted RSA keys get in; none: ANYONE who can reach the port gets a shell on the phone "
        "(and whatever its sandbox can read); the port is on 127.0.0.1 either way",
    )
    parser.add_argument(
        "--accept-key",
        metavar="PATH",
        type=Path,
        action="append",
        help="adbkey.pub to accept (repeatable; default: <config dir>/adbkey.pub and ~/.android/adbkey.pub)",
    )
    parser.add_argument("--rooted", action="store_true", help="run commands as the phone's uid 0 (a rooted phone)")
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--drop-after-bytes", metavar="N", type=bounded(int, minimum=1), help="drop the connection after N bytes (once)"
    )
    faults.add_argument("--fail-next-push", metavar="MESSAGE", help="refuse the next push with this message")
    faults.add_argument("--reply-delay-ms", metavar="MS", type=bounded(float, minimum=0, maximum=60_000), default=0.0, help="delay every reply by this many milliseconds")
    faults.add_argument("--hang-next-command", action="store_true", help="the next command never returns")
    faults.add_argument(
        "--hang-match",
        metavar="PROGRAM",
        help="with --hang-next-command: stop the first program with this name instead (e.g. mobilebench_runner), "
        "in whichever command runs it",
    )
    faults.add_argument(
        "--crash-next-command", action="store_true", help="the next command's program dies with SIGSEGV (139)"
    )
    faults.add_argument(
        "--crash-match",
        metavar="PROGRAM",
        help="with --crash-next-command: crash the first program with this name instead (e.g. mobilebench_runner), "
        "in whichever command runs it",
    )
    faults.add_argument(
        "--hot-zone", metavar="ZONE=TEMP_C", action="append", help="report this temperature, e.g. cpu-1-6-usr=95 (repeatable)"
    )
    thermal = parser.add_argument_group("thermal model")
    thermal.add_argument("--ambient-c", metavar="C", type=bounded(float, minimum=-40, maximum=100), default=30.0, help="ambient temperature (C)")
    thermal.add_argument("--heat-rate", metavar="C_PER_S", type=bounded(float, minimum=0, maximum=100), default=2.0, help="C/s a fully busy core gains")
    thermal.add_argument(
        "--tau-s", metavar="S", type=bounded(float, minimum=0.01, maximum=3600), default=30.0, help="cooling time constant in seconds"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="do not log connections and faults")


def run(args: argparse.Namespace) -> None:
    """Serve an emulated phone over the real ADB protocol (adb-shell and `adb` both work).

    Prints `emulator listening on 127.0.0.1:PORT` once ready; stop it with Ctrl-C or SIGTERM.
    Results measured on it are always labelled emulated.

    The emulator is a test device on loopback, not a sandbox for untrusted code: its
    commands run as an unprivileged user with a network and file system view of their
    own, but whoever gets in (see --auth) runs programs on this computer.
    """
    hot: dict[str, float] = {}
    for item in args.hot_zone or []:
        try:
            zone, temp = FaultPlan.parse_hot_zone(item)
        except ValueError as exc:
            raise UsageError(f"--hot-zone: {exc}") from None
        hot[zone] = temp
    for option, match, armed in (
        ("--hang-match", args.hang_match, args.hang_next_command),
        ("--crash-match", args.crash_match, args.crash_next_command),
    ):
        if match and not armed:
            raise UsageError(f"{option} needs {option.replace('match', 'next-command')}")
    faults = FaultPlan(
        drop_after_bytes=args.drop_after_bytes,
        fail_next_push=args.fail_next_push,
        reply_delay_s=args.reply_delay_ms / 1000.0,
        hang_next_command=args.hang_next_command,
        hang_match=args.hang_match,
        crash_next_command=args.crash_next_command,
        crash_match=args.crash_match,
        hot_zones=hot,
    )
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    emulator = PhoneEmulator(
        args.root,
        profile=args.profile,
        port=args.port,
        auth=args.auth,
        accepted_keys=args.accept_key or (),
        faults=faults,
        thermal=ThermalModel(ambient_c=args.ambient_c, heat_rate_c_per_s=args.heat_rate, tau_s=args.tau_s),
        rooted=args.rooted,
        abi=args.abi,
        host_cpus=None if args.host_cpu is None else [args.host_cpu],
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emulator:
        if args.auth == "none":
            print(
                f"warning: --auth none: anyone who can reach {emulator.address} gets a shell on the phone, without a key",
                file=sys.stderr,
                flush=True,
            )
        print(
            f"emulator listening on {emulator.address} (phone {args.profile}, {args.abi}, files in {emulator.root.root})",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    print("emulator stopped", flush=True)
