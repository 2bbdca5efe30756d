"""How much of `mobilebench profile` is the toolkit, and how much is the measurement?

Runs ``mobilebench profile MODEL --device emulator`` (the real CLI, in a fresh Python
process, against a phone emulator started here) with a warm artifact cache and the
model and runner already on the phone, and compares its wall time with the time the
runner itself spent measuring:

    runner time = model load (load_ms) + every iteration's latency (warm-up included)
    overhead    = (CLI wall time - runner time) / CLI wall time

Goal: overhead under 20 % for 100 timed iterations, for the command as typed (the default
``--format table``), both with its output piped (a script or a CI log: no progress
display) and on a terminal (a pseudo-terminal here: rich's live progress on stderr);
``--format json``, as scripts use it, is measured alongside. Wall times on a shared
machine wander by tens of milliseconds, so each variant is run ``--repeat`` times
(default 15), alternating, and the run with the median overhead is reported. A
second, in-process run of the same profile (library, no interpreter start-up) breaks the
rest down by the session's stages (connect, state reads, push checks, the runner's
process start, storing).

The package is byte-compiled first, as a regular install is (``make setup`` does the
same): otherwise, where PYTHONDONTWRITEBYTECODE is set, every CLI call would compile
mobilebench from source and the benchmark would measure that instead.

Usage: .venv/bin/python benchmarks/bench_profile_overhead.py [--model skipnet_m]
       [--warmup 10] [--iterations 100] [--repeat 15] [--json]
The first run may export the model (minutes); the numbers are taken after that.
"""

from __future__ import annotations

import argparse
import compileall
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mobilebench
from mobilebench.bench.hooks import ProgressHooks
from mobilebench.bench.session import ProfileConfig, ProfileSession
from mobilebench.device.emulator import PhoneEmulator
from mobilebench.device.keys import ensure_key_pair
from mobilebench.export import ExportOptions, export_model
from mobilebench.store import ResultsStore
from mobilebench.zoo.resolve import resolve_model

GOAL = 0.20
#: How the CLI is run: label -> (--format, on a terminal?). The default format first, as
#: people type it: piped (a script or a CI log: no progress display) and on a terminal
#: (rich's live progress on stderr); then json, as scripts use it.
VARIANTS = {"table": ("table", False), "table, terminal": ("table", True), "json": ("json", False)}


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    load_s: float
    iterations_s: float  # warm-up included
    samples: int

    @property
    def runner_s(self) -> float:
        return self.load_s + self.iterations_s

    @property
    def overhead(self) -> float:
        return (self.wall_s - self.runner_s) / self.wall_s


class StageClock(ProgressHooks):
    """Wall time between the session's stage changes."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def stage(self, text: str) -> None:
        self.marks.append((text, time.perf_counter()))

    def durations(self, end: float) -> list[tuple[str, float]]:
        ends = [t for _, t in self.marks[1:]] + [end]
        return [(text, stop - start) for (text, start), stop in zip(self.marks, ends)]


def runner_time(db: Path, run_id: int) -> tuple[float, float, int]:
    with ResultsStore(db, create=False) as store:
        record = store.get_run(run_id)
        samples = store.samples(run_id)
    assert record is not None and record.stats is not None, f"run {run_id} did not complete"
    return (record.stats.load_ms or 0.0) / 1000, sum(s.latency_ms for s in samples) / 1000, len(samples)


def measure_cli(address: str, db: Path, model: str, warmup: int, iterations: int, fmt: str, terminal: bool) -> Measurement:
    """One ``mobilebench profile`` process with ``--format fmt``, its output piped or on a
    pseudo-terminal; its run is the newest in ``db``."""
    argv = [
        sys.executable, "-m", "mobilebench.cli.main", "profile", model, "--device", "emulator", "--address", address,
        "--warmup", str(warmup), "--iterations", str(iterations), "--db", str(db), "--format", fmt,
    ]  # fmt: skip
    if terminal:
        code, wall, output = run_on_terminal(argv)
    else:
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - started
        code, output = done.returncode, done.stderr
    if code != 0:
        sys.exit(f"profile failed: {output.strip()}")
    with ResultsStore(db, create=False) as store:
        (newest,) = store.runs(limit=1)
    load_s, iterations_s, n = runner_time(db, newest.id)
    return Measurement(wall, load_s, iterations_s, n)


def run_on_terminal(argv: list[str]) -> tuple[int, float, str]:
    """Run ``argv`` with stdout and stderr on a new 120x40 pseudo-terminal, reading it as
    a terminal emulator would: (exit status, wall seconds, everything written)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("COLUMNS", None)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the last process holding the terminal has exited
            break
        if not data:
            break
        chunks.append(data)
    code = process.wait()
    wall = time.perf_counter() - started
    os.close(master)
    return code, wall, b"".join(chunks).decode(errors="replace")


def measure_in_process(address: str, db: Path, model: str, warmup: int, iterations: int) -> tuple[Measurement, list[tuple[str, float]]]:
    clock = StageClock()
    config = ProfileConfig(device="emulator", address=address, warmup=warmup, iterations=iterations)
    resolved = resolve_model(model)
    with ResultsStore(db) as store:
        started = time.perf_counter()
        (outcome,) = ProfileSession(config, store, hooks=clock).run([resolved])
        end = time.perf_counter()
    load_s, iterations_s, n = runner_time(db, outcome.run_id)
    return Measurement(end - started, load_s, iterations_s, n), clock.durations(end)


def _python_s(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def start_up_costs(model: str) -> dict[str, float]:
    """Seconds a fresh interpreter spends outside the session: starting and ending
    Python, importing what a profile run imports (and freeing it at exit), resolving
    the model name. Each is the fastest of three tries."""
    bare = min(_python_s("pass") for _ in range(3))
    imports = "import mobilebench.cli.main, mobilebench.cli.profile, mobilebench.bench.session, mobilebench.device.adb"
    loaded = min(_python_s(imports) for _ in range(3))
    resolved = min(_python_s(f"{imports}; from mobilebench.zoo.resolve import resolve_model; resolve_model({model!r})") for _ in range(3))
    return {
        "python start-up and exit": bare,
        "imports of a profile run, and their clean-up at exit": max(0.0, loaded - bare),
        "resolve_model (name -> model)": max(0.0, resolved - loaded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="skipnet_m")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15, help="CLI runs per format; the median one is reported")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()

    compileall.compile_dir(mobilebench.__path__[0], quiet=1)
    export_model(resolve_model(args.model), ExportOptions())  # warm the artifact cache
    key = ensure_key_pair()
    with tempfile.TemporaryDirectory(prefix="mobilebench-bench-") as tmp:
        db = Path(tmp) / "results.sqlite"
        with PhoneEmulator(Path(tmp) / "phone", accepted_keys=[key.with_name("adbkey.pub")]) as phone:
            # Prime the phone (push model and runner), as in any run after the first.
            measure_in_process(phone.address, db, args.model, 0, 1)
            # Alternating, so that drift of this machine hits every variant alike.
            cli_runs: dict[str, list[Measurement]] = {label: [] for label in VARIANTS}
            for _ in range(args.repeat):
                for label, (fmt, terminal) in VARIANTS.items():
                    cli_runs[label].append(
                        measure_cli(phone.address, db, args.model, args.warmup, args.iterations, fmt, terminal)
                    )
            lib, stages = measure_in_process(phone.address, db, args.model, args.warmup, args.iterations)
        start_up = start_up_costs(args.model)
    overheads = {label: [m.overhead for m in runs] for label, runs in cli_runs.items()}
    median_run = {label: sorted(runs, key=lambda m: m.overhead)[len(runs) // 2] for label, runs in cli_runs.items()}

    if args.json:
        print(json.dumps({"cli": {label: asdict(m) | {"overhead": m.overhead, "overheads": overheads[label]} for label, m in median_run.items()},
                          "library": asdict(lib) | {"overhead": lib.overhead},
                          "start_up_s": start_up, "stages": stages}, indent=2))  # fmt: skip
        return
    print(f"profile {args.model} --device emulator --warmup {args.warmup} --iterations {args.iterations} (warm cache, files on the phone)")
    for label, values in overheads.items():
        print(f"  CLI {label:15s}: overhead over {len(values)} runs: median {statistics.median(values):.1%}, range {min(values):.1%} .. {max(values):.1%}")
    rows = [(f"CLI {label}, median run", m) for label, m in median_run.items()] + [("library (in process)", lib)]
    for label, m in rows:
        print(
            f"  {label:32s} wall {m.wall_s:6.2f} s   runner {m.runner_s:6.2f} s "
            f"(load {m.load_s:.2f} + {m.samples} iterations {m.iterations_s:.2f})   overhead {m.overhead:6.1%}"
        )
    print("  a new process spends:")
    for text, seconds in start_up.items():
        print(f"    {seconds:6.3f} s  {text}")
    print("  in-process stages:")
    for text, seconds in stages:
        print(f"    {seconds:6.3f} s  {text}")
    for label, m in median_run.items():
        verdict = "meets" if m.overhead < GOAL else "MISSES"
        print(f"overhead ratio (CLI, {label}): {m.overhead:.3f}  -> {verdict} the goal of < {GOAL:.0%}")


if __name__ == "__main__":
    main()
