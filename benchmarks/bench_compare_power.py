"""Does a latency comparison give the right verdict on a noisy machine, and how fast?

Two methods answer "is B slower than A?" on this machine's host runner, side by side,
with a noisy neighbour of this script's own running throughout:

- ``compare``: ``mobilebench compare A B --device host --threshold T --format json``
  (interleaved pairs, the ratio's interval, three-way verdict, measures more on unknown);
- ``old``: what ``regress`` did before: one ``mobilebench profile`` run of each
  (``--warmup 5 --iterations 50``), a verdict from the per-iteration samples: slower
  (faster) when the median changed by more than T and a one-sided Mann-Whitney U test
  on the iterations gives p < 0.01, ``unknown`` when it changed by more than T without
  significance, else ``same``.

Workloads: A/A (mobilenet_v3_large width 1.0 against a byte-identical copy of itself)
and a real ~5 % slowdown (width 1.05 against 1.0, +8.1 % fvcore FLOPs). Before the
trials, straight through the native runner's interleaved mode (``--true-batches``
invocations of ``--true-pairs`` pairs): the slowdown's true ratio, without the
neighbour, to be sure it lies beyond the threshold; and, with the neighbour, what the
paired statistics assume (:func:`noise_structure`): the lag-1 autocorrelation of the
per-pair log-ratios within an invocation, and how far the invocations' ratios spread.

The noisy neighbour (:class:`NoisyNeighbour`): ``--neighbours`` processes, each
sleeping a random gap, then running a busy loop (arithmetic, or a sweep over a 32 MiB
buffer that evicts the caches) pinned to a random core for a random burst; every burst
and the whole neighbour are bounded in time (it stops with the benchmark).

Each trial runs the four measurements in a shuffled order, so that the machine's
slow changes hit all of them alike. Reported, from this one run: per method and
workload the verdict counts, the rate of the right verdict (A/A: ``same``; 5 %:
``slower``; ``unknown`` counts as a miss), the false-verdict rate (A/A: slower or
faster; 5 %: same or faster), the range of the ratios and the median seconds per
verdict (wall time of the CLI calls, a fresh Python process each; for compare also its own
``seconds``, from its start to the verdict). Goal (issue 15): A/A
``same`` in >= 19/20, the 5 % workload ``slower`` in >= 19/20, <= 60 s per verdict.

Usage: .venv/bin/python benchmarks/bench_compare_power.py [--trials 20] [--threshold 0.02]
       [--neighbours 1] [--no-neighbour] [--methods compare,old] [--true-batches 12] [--json PATH]
Build the runner first (``make runner``); the first run exports both widths (minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

from mobilebench.bench.paired import estimate_ratio
from mobilebench.bench.runners import InterleavedRequest, interleaving_adapter
from mobilebench.paths import project_root
from mobilebench.store import ResultsStore

GOAL_RATE = 19 / 20
GOAL_SECONDS = 60.0
OLD_ALPHA = 0.01
OLD_WARMUP, OLD_ITERATIONS = 5, 50
RIGHT = {"aa": ("same",), "slow": ("slower",)}
FALSE = {"aa": ("slower", "faster"), "slow": ("same", "faster")}
CARDS = {"w100": 1.0, "w105": 1.05}
RUNNER = project_root() / "android_app" / "build" / "host" / "mobilebench_runner"


# --- the noisy neighbour -------------------------------------------------------------


def _neighbour(seed: int, cpus: list[int], gap_s: tuple[float, float], burst_s: tuple[float, float], stop) -> None:
    """One neighbour process: random gaps, then a bounded busy burst on a random core."""
    rng = random.Random(seed)
    sweep = np.zeros(32 << 20, dtype=np.uint8)
    while not stop.wait(rng.uniform(*gap_s)):
        os.sched_setaffinity(0, {rng.choice(cpus)})
        end = time.perf_counter() + rng.uniform(*burst_s)
        if rng.random() < 0.5:
            x = 1.0
            while time.perf_counter() < end:
                for _ in range(10_000):
                    x = x * 1.000001 + 1e-9
        else:
            while time.perf_counter() < end:
                sweep[::64] += 1  # one write per cache line


class NoisyNeighbour:
    """``with NoisyNeighbour(...):`` random bursts of busy loops on random cores.

    With the defaults each process is busy about half of the time, in bursts of
    0.05-0.5 s. It runs only inside the ``with`` block (processes are terminated on
    exit, and are daemons should this script die).
    """

    def __init__(
        self,
        processes: int = 1,
        *,
        cpus: list[int] | None = None,
        gap_s: tuple[float, float] = (0.05, 0.5),
        burst_s: tuple[float, float] = (0.05, 0.5),
        seed: int = 0,
    ) -> None:
        self.processes = processes
        self.cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self.gap_s, self.burst_s, self.seed = gap_s, burst_s, seed
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        self._workers: list[multiprocessing.process.BaseProcess] = []

    def __enter__(self) -> NoisyNeighbour:
        for i in range(self.processes):
            worker = self._context.Process(
                target=_neighbour,
                args=(self.seed + i, self.cpus, self.gap_s, self.burst_s, self._stop),
                daemon=True,
            )
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=2 * self.burst_s[1] + 1)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        self._workers.clear()


# --- the two methods ------------------------------------------------------------------


@dataclass
class Outcome:
    method: str
    workload: str  # aa | slow
    verdict: str
    ratio: float | None
    seconds: float
    detail: dict = field(default_factory=dict)


def mobilebench(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobilebench.cli.main", *args], capture_output=True, text=True, env=env
    )


def compare_once(base: Path, cand: Path, *, threshold: float, max_seconds: float | None, db: Path,
                 env: dict[str, str], workload: str, extra: list[str]) -> Outcome:  # fmt: skip
    argv = ["compare", str(base), str(cand), "--device", "host", "--threshold", str(threshold)]
    argv += ["--format", "json", "--db", str(db), *extra]
    if max_seconds is not None:
        argv += ["--max-seconds", str(max_seconds)]
    started = time.perf_counter()
    done = mobilebench(argv, env)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"compare failed ({done.returncode}): {done.stderr.strip()}")
    data = json.loads(done.stdout)
    detail = {k: data.get(k) for k in ("ci_low", "ci_high", "pairs", "looks", "seconds")}
    return Outcome("compare", workload, data["verdict"], data["ratio"], seconds, detail)


def profile_once(artifact: Path, db: Path, env: dict[str, str]) -> list[float]:
    argv = ["profile", str(artifact), "--device", "host", "--warmup", str(OLD_WARMUP)]
    argv += ["--iterations", str(OLD_ITERATIONS), "--format", "json", "--db", str(db)]
    done = mobilebench(argv, env)
    if done.returncode != 0:
        raise SystemExit(f"profile failed ({done.returncode}): {done.stderr.strip()}")
    (run,) = json.loads(done.stdout)
    with ResultsStore(db) as store:
        return [s.latency_ms for s in store.samples(run["id"]) if not s.warmup]


def old_verdict(base_ms: list[float], cand_ms: list[float], threshold: float) -> tuple[str, float, float | None]:
    """The pre-issue-15 rule: median change beyond the threshold and Mann-Whitney p < 0.01."""
    ratio = statistics.median(cand_ms) / statistics.median(base_ms)
    if abs(ratio - 1) <= threshold:
        return "same", ratio, None
    slower = ratio > 1
    p = float(mannwhitneyu(cand_ms, base_ms, alternative="greater" if slower else "less").pvalue)
    if p >= OLD_ALPHA:
        return "unknown", ratio, p
    return ("slower" if slower else "faster"), ratio, p


def old_once(base: Path, cand: Path, *, threshold: float, db: Path, env: dict[str, str], workload: str) -> Outcome:
    started = time.perf_counter()
    base_ms = profile_once(base, db, env)
    cand_ms = profile_once(cand, db, env)
    seconds = time.perf_counter() - started
    verdict, ratio, p = old_verdict(base_ms, cand_ms, threshold)
    return Outcome("old", workload, verdict, ratio, seconds, {"p_value": p})


# --- the noise structure, straight from the runner --------------------------------------


def interleaved_batches(
    base: Path, cand: Path, *, batches: int, pairs: int, cpu: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batches`` runner invocations of ``pairs`` ABBA pairs: (baseline ms, candidate ms, batch)."""
    adapter = interleaving_adapter("mobilebench_runner")
    request = InterleavedRequest(model_paths=(str(base), str(cand)), warmup=5, pairs=pairs)
    out_b, out_c, labels = [], [], []
    for batch in range(batches):
        argv = ["taskset", "-c", str(cpu), *adapter.interleaved_argv(str(RUNNER), request)]
        done = subprocess.run(argv, capture_output=True, text=True)
        first, second = adapter.parse_interleaved(done.stdout, done.stderr, request=request)
        by_pair = {s.pair: s.latency_ms for s in second.samples if not s.warmup}
        for s in first.samples:
            if not s.warmup:
                out_b.append(s.latency_ms)
                out_c.append(by_pair[s.pair])
                labels.append(batch)
    return np.array(out_b), np.array(out_c), np.array(labels)


def noise_structure(base: np.ndarray, cand: np.ndarray, labels: np.ndarray) -> dict:
    """What the paired statistics assume, measured: the lag-1 autocorrelation of the
    per-pair log-ratios within a batch, and how much batches differ beyond it."""
    d = np.log(cand / base)
    lag1 = [np.corrcoef(d[labels == b][:-1], d[labels == b][1:])[0, 1] for b in np.unique(labels)]
    est = estimate_ratio(base, cand, batches=labels)
    return {
        "ratio": est.ratio,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "pairs": est.pairs,
        "batches": est.batches,
        "within_ci": est.within,
        "between_ci": est.between,
        "batch_ratios": [float(np.exp(np.median(d[labels == b]))) for b in np.unique(labels)],
        "lag1_autocorrelation": [float(x) for x in lag1],
        "baseline_median_ms": est.baseline_median_ms,
    }


# --- set-up -----------------------------------------------------------------------------


def export_artifacts(work: Path, env: dict[str, str]) -> dict[str, Path]:
    """Both widths of mobilenet_v3_large as .pte files (cached exports), and a copy of A."""
    cards = work / "models"
    cards.mkdir()
    for name, width in CARDS.items():
        (cards / f"{name}.toml").write_text(
            f'arch = "mobilenet_v3_large"\ninput_size = 224\n[options]\nwidth_mult = {width}\n'
        )
    env = {**env, "MOBILEBENCH_MODELS_DIR": str(cards)}
    out = {}
    for name in CARDS:
        target = work / f"{name}.pte"
        print(f"exporting {name} (cached after the first time) ...", file=sys.stderr)
        done = mobilebench(["export", name, "--output", str(target)], env)
        if done.returncode != 0:
            raise SystemExit(f"export {name} failed: {done.stderr.strip()}")
        out[name] = target
    out["w100_copy"] = work / "w100_copy.pte"
    shutil.copyfile(out["w100"], out["w100_copy"])
    return out


# --- the report ---------------------------------------------------------------------------


def summarize(outcomes: list[Outcome]) -> list[dict]:
    rows = []
    for method in dict.fromkeys(o.method for o in outcomes):
        for workload in ("aa", "slow"):
            mine = [o for o in outcomes if o.method == method and o.workload == workload]
            if not mine:
                continue
            counts = Counter(o.verdict for o in mine)
            ratios = [o.ratio for o in mine if o.ratio is not None]
            rows.append(
                {
                    "method": method,
                    "workload": "A/A" if workload == "aa" else "w1.05/w1.0",
                    "trials": len(mine),
                    "same": counts["same"],
                    "slower": counts["slower"],
                    "faster": counts["faster"],
                    "unknown": counts["unknown"],
                    "right": sum(counts[v] for v in RIGHT[workload]) / len(mine),
                    "false": sum(counts[v] for v in FALSE[workload]) / len(mine),
                    "ratio_min": min(ratios) if ratios else None,
                    "ratio_max": max(ratios) if ratios else None,
                    "median_s": statistics.median(o.seconds for o in mine),
                    "max_s": max(o.seconds for o in mine),
                    "median_own_s": statistics.median(own)
                    if (own := [o.detail["seconds"] for o in mine if o.detail.get("seconds")])
                    else None,
                    "max_own_s": max(own) if own else None,
                }
            )
    return rows


def describe(label: str, noise: dict) -> str:
    ratios, lag1 = noise["batch_ratios"], noise["lag1_autocorrelation"]
    return (
        f"{label}: ratio {noise['ratio']:.4f} ({noise['ci_low']:.4f}-{noise['ci_high']:.4f}), "
        f"{noise['pairs']} pairs in {noise['batches']} invocations; invocation ratios {min(ratios):.3f}-"
        f"{max(ratios):.3f} (sd {float(np.std(np.log(ratios), ddof=1)):.2%}), pairs alone "
        f"{noise['within_ci'][0]:.4f}-{noise['within_ci'][1]:.4f}; lag-1 autocorrelation {min(lag1):+.2f}..{max(lag1):+.2f}; "
        f"baseline median {noise['baseline_median_ms']:.1f} ms"
    )


def print_table(rows: list[dict], noise: dict[str, dict]) -> None:
    for label, found in noise.items():
        print(describe(label, found))
    header = f"{'method':8} {'workload':11} {'n':>3} {'same':>4} {'slow':>4} {'fast':>4} {'unkn':>4} "
    header += f"{'right':>6} {'false':>6} {'ratios':>15} {'median s':>8} {'max s':>6} {'own med':>7} {'own max':>7}"
    print(header)
    for r in rows:
        ratios = f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f}" if r["ratio_min"] is not None else ""
        print(
            f"{r['method']:8} {r['workload']:11} {r['trials']:>3} {r['same']:>4} {r['slower']:>4} {r['faster']:>4} "
            f"{r['unknown']:>4} {r['right']:>6.0%} {r['false']:>6.0%} {ratios:>15} {r['median_s']:>8.1f} {r['max_s']:>6.1f}"
            + (f" {r['median_own_s']:>7.1f} {r['max_own_s']:>7.1f}" if r["median_own_s"] is not None else "")
        )
    for r in rows:
        if r["method"] == "compare":
            ok = r["right"] >= GOAL_RATE and r["max_s"] <= GOAL_SECONDS
            print(f"goal {r['workload']}: right {r['right']:.0%} (>= 95 %), max {r['max_s']:.0f} s (<= 60 s): "
                  f"{'met' if ok else 'NOT met'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.02)
    parser.add_argument("--neighbours", type=int, default=1, help="neighbour processes")
    parser.add_argument("--no-neighbour", action="store_true")
    parser.add_argument("--methods", default="compare,old")
    parser.add_argument("--max-seconds", type=float, default=None, help="compare's --max-seconds (default: its own)")
    parser.add_argument("--true-batches", type=int, default=12, help="invocations of the true-ratio run (0: skip)")
    parser.add_argument("--true-pairs", type=int, default=100, help="pairs per invocation of the true-ratio run")
    parser.add_argument("--cpu", type=int, default=0, help="core of the direct runner calls (the host profile's)")
    parser.add_argument("--compare-args", default="", help="extra arguments of compare, e.g. '--pairs 30 --batches 8'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every outcome here")
    args = parser.parse_args()
    methods = args.methods.split(",")
    rng = random.Random(args.seed)
    env = dict(os.environ)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_compare_power.") as tmp:
        work = Path(tmp)
        db = work / "results.sqlite"
        artifacts = export_artifacts(work, env)
        a, a_copy, b = artifacts["w100"], artifacts["w100_copy"], artifacts["w105"]
        noise: dict[str, dict] = {}
        if args.true_batches > 0:
            print("true ratio: a long interleaved run through the runner, no neighbour ...", file=sys.stderr)
            kw = dict(batches=args.true_batches, pairs=args.true_pairs, cpu=args.cpu)
            noise["true ratio w1.05/w1.0, no neighbour"] = noise_structure(*interleaved_batches(a, b, **kw))
            if not args.no_neighbour:
                with NoisyNeighbour(args.neighbours, seed=args.seed + 100):
                    noise["A/A, neighbour"] = noise_structure(*interleaved_batches(a, a_copy, **kw))
                    noise["w1.05/w1.0, neighbour"] = noise_structure(*interleaved_batches(a, b, **kw))
            for label, found in noise.items():
                print(describe(label, found), file=sys.stderr)
        outcomes: list[Outcome] = []
        tasks = [(m, w) for m in methods for w in ("aa", "slow")]
        neighbour = NoisyNeighbour(args.neighbours, seed=args.seed) if not args.no_neighbour else None
        with neighbour if neighbour is not None else contextlib.nullcontext():
            for trial in range(1, args.trials + 1):
                rng.shuffle(tasks)
                for method, workload in tasks:
                    cand = a_copy if workload == "aa" else b
                    if method == "compare":
                        o = compare_once(a, cand, threshold=args.threshold, max_seconds=args.max_seconds, db=db,
                                         env=env, workload=workload, extra=args.compare_args.split())  # fmt: skip
                    else:
                        o = old_once(a, cand, threshold=args.threshold, db=db, env=env, workload=workload)
                    outcomes.append(o)
                    print(f"trial {trial}/{args.trials} {method:7} {workload:4} {o.verdict:7} "
                          f"ratio {o.ratio:.4f} {o.seconds:5.1f} s {o.detail}", file=sys.stderr)  # fmt: skip
        rows = summarize(outcomes)
        print(f"load average of this machine: {load_start} at the start, {os.getloadavg()} at the end "
              f"({os.cpu_count()} CPUs); compare args: {args.compare_args or 'defaults'}")  # fmt: skip
        print_table(rows, noise)
        if args.json:
            args.json.write_text(json.dumps({"noise": noise, "rows": rows,
                                             "outcomes": [asdict(o) for o in outcomes]}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
