"""What a warm `mobilebench profile` call costs outside the runner's own time.

Runs ``mobilebench profile MODEL --device emulator --format json`` (the real CLI, a
fresh Python process each time) against a phone emulator started here, with the
artifact cached and the model and runner already on the phone, and subtracts what the
runner itself spent (model loads + every iteration, warm-up included, from the stored
run) from the call's wall time. That remainder is what a user waits for beyond the
measurement: Python start-up and imports, connecting, the state reads, the push
checks, the runner's process start, storing. Goal: well under a second (0.5 s).

The calls are repeated (``--repeat``, default 7) and the median is reported, with the
range: on a shared machine single calls wander.

To say what of that remainder the package can change, the same run measures the
*library floor*: a fresh interpreter that imports exactly the third-party modules one
call imported (read from ``-X importtime``) and nothing of mobilebench, timed the same
number of times. The floor holds interpreter start and numpy, scipy, SQLAlchemy,
adb-shell, cryptography and rich; "outside minus floor" is mobilebench's own modules,
its work, the device round trips and the runner's process start on the phone.

Usage: .venv/bin/python benchmarks/bench_profile_cost.py [--model skipnet_m] [--repeat 7]
The first run may export the model (minutes); the numbers are taken after that.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mobilebench.device.emulator import PhoneEmulator
from mobilebench.device.keys import ensure_key_pair
from mobilebench.store import ResultsStore

GOAL_S = 0.5


def one_call(model: str, address: str, db: Path, warmup: int, iterations: int) -> tuple[float, float]:
    """(wall seconds, runner seconds) of one CLI call."""
    argv = [sys.executable, *profile_argv(model, address, db, warmup, iterations)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"profile failed: {done.stderr.strip()}")
    (run,) = json.loads(done.stdout)
    with ResultsStore(db) as store:
        samples = store.samples(run["id"])
    runner = (run["load_ms"] or 0.0) + (run["warm_load_ms"] or 0.0) + sum(s.latency_ms for s in samples)
    return wall, runner / 1000.0


def profile_argv(model: str, address: str, db: Path, warmup: int, iterations: int) -> list[str]:
    argv = ["-m", "mobilebench.cli.main", "profile", model, "--device", "emulator"]
    argv += ["--address", address, "--warmup", str(warmup), "--iterations", str(iterations)]
    return argv + ["--db", str(db), "--format", "json"]


def third_party_imports(model: str, address: str, db: Path) -> list[str]:
    """The non-stdlib, non-mobilebench modules one call imports, in import order."""
    argv = [sys.executable, "-X", "importtime", *profile_argv(model, address, db, 1, 6)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"profile failed: {done.stderr.strip()}")
    names = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and not line.endswith("| imported package"):
            name = line.rsplit("|", 1)[1].strip()
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("mobilebench", "_distutils_hack") \
                    and not top.startswith("__editable__"):
                names.append(name)
    return list(dict.fromkeys(names))


def library_floor(names: Sequence[str]) -> float:
    """Wall seconds of a fresh interpreter importing ``names`` (and nothing else).

    Names that fail (a library probing for an optional module, as the call did too) are
    tried and passed over, as in the call.
    """
    code = ("import importlib, sys\nfor name in sys.argv[1:]:\n    try:\n"
            "        importlib.import_module(name)\n    except ImportError:\n        pass")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *names], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="skipnet_m")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ensure_key_pair()
    with tempfile.TemporaryDirectory(prefix="mobilebench-cost-") as tmp:
        db = Path(tmp) / "cost.sqlite"
        with PhoneEmulator(root=Path(tmp) / "phone") as phone:
            print(f"warming up (export, push) on {phone.address} ...", file=sys.stderr)
            one_call(args.model, phone.address, db, 1, 6)
            names = third_party_imports(args.model, phone.address, db)
            calls, floors = [], []
            for _ in range(args.repeat):  # interleaved, so a slow minute hits both alike
                calls.append(one_call(args.model, phone.address, db, args.warmup, args.iterations))
                floors.append(library_floor(names))
    outside = sorted(wall - runner for wall, runner in calls)
    median = statistics.median(outside)
    floor = statistics.median(floors)
    own = sorted(wall - runner - lib for (wall, runner), lib in zip(calls, floors))
    print(f"mobilebench profile {args.model} --device emulator, warm: {args.repeat} calls, "
          f"{args.warmup} warm-up + {args.iterations} timed iterations")
    print("| | median | range |")
    print("|---|---|---|")
    print(f"| call wall time s | {statistics.median(w for w, _ in calls):.3f} | "
          f"{min(w for w, _ in calls):.3f}-{max(w for w, _ in calls):.3f} |")
    print(f"| runner time s (loads + iterations) | {statistics.median(r for _, r in calls):.3f} | "
          f"{min(r for _, r in calls):.3f}-{max(r for _, r in calls):.3f} |")
    print(f"| outside the runner s | {median:.3f} | {outside[0]:.3f}-{outside[-1]:.3f} |")
    print(f"| library floor s ({len(names)} third-party modules, interpreter start included) | "
          f"{floor:.3f} | {min(floors):.3f}-{max(floors):.3f} |")
    print(f"| outside minus floor s (mobilebench, device round trips, runner start) | "
          f"{statistics.median(own):.3f} | {own[0]:.3f}-{own[-1]:.3f} |")
    print(f"goal: under {GOAL_S} s outside the runner: {'met' if median < GOAL_S else 'NOT met'}")
    if floor >= GOAL_S:
        print(f"the library floor alone ({floor:.3f} s) is above the goal on this machine")


if __name__ == "__main__":
    main()
