"""Latency regression verdicts: the newest runs against a committed baseline of runs.

The unit of replication is the **run** (one runner invocation), never the iteration:
the iterations of one run share the machine's state during it (frequency, temperature,
neighbours, memory placement), so their spread says nothing about how much two runs a
minute apart differ, and a test on pooled iterations would call that difference
significant. Per key (model, device, runtime, dtype, emulated):

- baseline replicates: the medians of the baseline's runs of that key (the file keeps
  every run it was made from, e.g. the three of ``profile --repeat 3``);
- new replicates: the medians of the newest ``runs`` (default 3) successful latency
  runs of that key started after the baseline's newest run of it; runs of interleaved
  comparisons (``mobilebench compare``) are left out, being measured beside another
  program;
- the ratio NEW / BASELINE of the geometric means of the run medians, with Welch's t
  interval on the log medians (``scipy.stats.ttest_ind(equal_var=False)``: unequal
  between-run variances allowed, no assumption beyond roughly log-normal run medians);
- the interval's confidence is ``1 - alpha / m`` for the ``m`` baseline keys checked
  (Bonferroni), so the chance of any false verdict in the whole check is at most
  ``alpha`` (default 5 %);
- the verdict is :func:`mobilebench.bench.paired.classify`'s, as for ``compare``:
  ``same`` (the interval inside ``1 +- threshold``), ``slower``/``faster`` (the interval
  beyond 1 and the ratio beyond the threshold), else ``unknown``. Fewer than
  :data:`MIN_RUNS` runs on a side is ``unknown`` too (no between-run spread to judge
  by), as is a baseline key with no run since the baseline (``missing``).

With three runs a side Welch's interval is wide (a t quantile with about 4 degrees of
freedom): it resolves a 5 % threshold when the run medians of each side agree to about
1-2 %, i.e. on a quiet, dedicated phone. More runs narrow it.

Exit status (:attr:`RegressReport.exit_code`): 1 if any key is ``slower``, else 3 if any
is ``unknown``, else 0.

Baseline file: CSV with columns :data:`BASELINE_COLUMNS`, one row per **run**, several
rows per key; ``samples_ms`` is the run's timed per-iteration latencies separated by
spaces (empty for summary-only runners; kept for re-analysis, not used by the test).
Files written before this layout have one row per key (the newest run only): they are
read, and every key says ``unknown`` until the baseline is rewritten from three runs.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from mobilebench.bench.paired import EXIT_CODES, classify
from mobilebench.errors import UsageError
from mobilebench.files import write_text_atomic
from mobilebench.records import RunRecord
from mobilebench.report.formats import to_markdown
from mobilebench.report.selection import RunKey, run_key
from mobilebench.store import ResultsStore

BASELINE_COLUMNS = (
    "model",
    "device",
    "runtime",
    "dtype",
    "emulated",
    "median_ms",
    "n",
    "run_id",
    "created_at",
    "samples_ms",
)
DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
#: Newest runs per key taken for the baseline and for the new side.
DEFAULT_RUNS = 3
#: Fewest runs per side for a verdict: two give a spread with one degree of freedom.
MIN_RUNS = 3
TEST_NAME = "Welch t interval on the log medians of the runs"
#: Statuses of a key: the verdicts, and ``new`` (runs without a baseline, not checked).
STATUSES = (*EXIT_CODES, "new")


@dataclass(frozen=True)
class BaselineRun:
    """One row of a baseline file: one run."""

    key: RunKey
    median_ms: float
    n: int
    run_id: int | None
    created_at: str | None
    samples_ms: tuple[float, ...]


@dataclass(frozen=True)
class Verdict:
    """One key's answer. Latencies are geometric means of run medians, in ms."""

    key: RunKey
    status: str
    baseline_ms: float | None
    new_ms: float | None
    ratio: float | None  # NEW / BASELINE
    ci_low: float | None
    ci_high: float | None
    baseline_runs: int
    new_runs: int
    spread: float | None  # the larger side's standard deviation of log run medians
    new_run_ids: tuple[int, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class RegressReport:
    baseline: Path
    threshold: float
    alpha: float
    confidence: float  # of each key's interval
    verdicts: list[Verdict]

    @property
    def exit_code(self) -> int:
        codes = {EXIT_CODES[v.status] for v in self.verdicts if v.status in EXIT_CODES}
        return 1 if 1 in codes else 3 if 3 in codes else 0

    @property
    def failed(self) -> bool:
        return self.exit_code != 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.status] = out.get(v.status, 0) + 1
        return out

    def headline(self) -> str:
        word = {0: "passed", 1: "FAILED", 3: "UNDECIDED"}[self.exit_code]
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items()))
        return f"{word} ({counts or 'nothing compared'})"

    COLUMNS = ("model", "device", "runtime", "dtype", "baseline_ms", "new_ms", "ratio", "ci", "runs", "status", "note")

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for v in self.verdicts:
            out.append(
                {
                    "model": v.key.model,
                    "device": v.key.device + (" (emulated)" if v.key.emulated else ""),
                    "runtime": v.key.runtime,
                    "dtype": v.key.dtype,
                    "baseline_ms": _round(v.baseline_ms, 3),
                    "new_ms": _round(v.new_ms, 3),
                    "ratio": _round(v.ratio, 4),
                    "ci": f"{v.ci_low:.3f}-{v.ci_high:.3f}" if v.ci_low is not None and v.ci_high is not None else None,
                    "runs": f"{v.baseline_runs}/{v.new_runs}",
                    "status": v.status,
                    "note": v.note,
                }
            )
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "baseline": str(self.baseline),
            "threshold": self.threshold,
            "alpha": self.alpha,
            "confidence": self.confidence,
            "test": TEST_NAME,
            "exit_code": self.exit_code,
            "verdicts": [
                {
                    "model": v.key.model,
                    "device": v.key.device,
                    "emulated": v.key.emulated,
                    "runtime": v.key.runtime,
                    "dtype": v.key.dtype,
                    "status": v.status,
                    "baseline_ms": v.baseline_ms,
                    "new_ms": v.new_ms,
                    "ratio": v.ratio,
                    "ci_low": v.ci_low,
                    "ci_high": v.ci_high,
                    "baseline_runs": v.baseline_runs,
                    "new_runs": v.new_runs,
                    "spread": v.spread,
                    "new_run_ids": list(v.new_run_ids),
                    "note": v.note,
                }
                for v in self.verdicts
            ],
        }

    def markdown(self) -> str:
        """A ``$GITHUB_STEP_SUMMARY`` section: headline, method, table."""
        icon = {0: ":white_check_mark:", 1: ":x:", 3: ":grey_question:"}[self.exit_code]
        lines = [
            f"### {icon} Latency regression check {self.headline()}",
            "",
            f"Baseline `{self.baseline}`. Per model the ratio of the new runs' medians to the baseline's, "
            f"with a {self.confidence:.2%} {TEST_NAME} (the run is the replicate); slower: the interval "
            f"above 1 and the ratio above {1 + self.threshold:g}; same: the interval inside "
            f"{1 - self.threshold:g}-{1 + self.threshold:g}; otherwise unknown.",
            "",
            to_markdown(self.COLUMNS, self.rows()),
        ]
        return "\n".join(lines)


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


# --- baseline files --------------------------------------------------------------------


def read_baseline(path: Path, *, allow_empty: bool = False) -> list[BaselineRun]:
    """Parse a baseline CSV; any problem is a :class:`UsageError` naming the line."""
    if not path.is_file():
        raise UsageError(
            f"baseline {path} not found: create it with `mobilebench regress --baseline {path} --update-baseline`"
        )
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    missing = [c for c in BASELINE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UsageError(
            f"baseline {path} lacks column(s) {', '.join(missing)}; expected {', '.join(BASELINE_COLUMNS)}"
        )
    runs, seen = [], set()
    for line, row in enumerate(reader, start=2):
        try:
            key = RunKey(
                model=_required(row, "model"),
                device=_required(row, "device"),
                runtime=_required(row, "runtime"),
                dtype=_required(row, "dtype"),
                emulated=_parse_bool(row["emulated"]),
            )
            median = float(row["median_ms"])
            samples = tuple(float(x) for x in (row["samples_ms"] or "").split())
            if not math.isfinite(median) or median <= 0 or any(not math.isfinite(x) or x < 0 for x in samples):
                raise ValueError("latencies must be finite and positive")
            run = BaselineRun(
                key=key,
                median_ms=median,
                n=int(row["n"]) if row["n"] else len(samples),
                run_id=int(row["run_id"]) if row["run_id"] else None,
                created_at=row["created_at"] or None,
                samples_ms=samples,
            )
        except (ValueError, TypeError) as exc:
            raise UsageError(f"baseline {path}, line {line}: {exc}") from exc
        if run.run_id is not None:
            identity = (key, run.run_id, run.created_at)
            if identity in seen:
                raise UsageError(f"baseline {path}, line {line}: run {run.run_id} of {key.model} appears twice")
            seen.add(identity)
        runs.append(run)
    if not runs and not allow_empty:
        raise UsageError(f"baseline {path} has no rows")
    return runs


def _required(row: dict[str, str], name: str) -> str:
    value = (row.get(name) or "").strip()
    if not value:
        raise ValueError(f"empty {name}")
    return value


def _parse_bool(text: str | None) -> bool:
    value = (text or "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise ValueError(f"emulated must be 0 or 1, got {text!r}")


def timed_samples(store: ResultsStore, run: RunRecord) -> list[float]:
    """A run's timed per-iteration latencies; averaged samples do not count as such."""
    return [s.latency_ms for s in store.samples(run.id) if not s.warmup and s.averaged_over == 1]


def baseline_run(store: ResultsStore, run: RunRecord) -> BaselineRun:
    assert run.stats is not None
    samples = tuple(timed_samples(store, run))
    return BaselineRun(run_key(run), run.stats.median_ms, run.stats.n, run.id, run.created_at, samples)


def write_baseline(path: Path, runs: Sequence[BaselineRun]) -> None:
    """Write the baseline CSV atomically: keys sorted by device, runtime, dtype, model;
    a key's runs oldest first."""

    def order(r: BaselineRun) -> tuple[Any, ...]:
        k = r.key
        return (k.device, k.emulated, k.runtime, k.dtype, k.model, r.created_at or "", r.run_id or 0)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BASELINE_COLUMNS)
    for r in sorted(runs, key=order):
        writer.writerow(
            [
                r.key.model, r.key.device, r.key.runtime, r.key.dtype, int(r.key.emulated),
                repr(r.median_ms), r.n, r.run_id if r.run_id is not None else "", r.created_at or "",
                " ".join(repr(x) for x in r.samples_ms),
            ]
        )  # fmt: skip
    write_text_atomic(path, out.getvalue())


# --- selection and the test --------------------------------------------------------------


def _matches(key: RunKey, device: str | None, runtime: str | None, dtype: str | None) -> bool:
    return (
        (device is None or key.device == device)
        and (runtime is None or key.runtime == runtime)
        and (dtype is None or key.dtype == dtype)
    )


def newest_runs(
    store: ResultsStore,
    *,
    per_key: int,
    after: dict[RunKey, str] | None = None,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
) -> dict[RunKey, list[RunRecord]]:
    """Up to ``per_key`` newest successful latency runs per key, newest first, outside
    comparisons; with ``after``, only runs of a key started after its time there."""
    found: dict[RunKey, list[RunRecord]] = {}
    for run in store.runs(device=device, runtime=runtime, dtype=dtype, status="ok", purpose="latency"):
        if run.meta.comparison_id is not None or run.stats is None:
            continue
        key = run_key(run)
        if after is not None and key in after and run.created_at <= after[key]:
            continue
        chosen = found.setdefault(key, [])
        if len(chosen) < per_key:
            chosen.append(run)
    return found


def run_level_interval(
    baseline_ms: Sequence[float], new_ms: Sequence[float], confidence: float
) -> tuple[float, float, float]:
    """NEW / BASELINE ratio of geometric means of run medians, and Welch's interval."""
    base, new = np.log(np.asarray(baseline_ms, float)), np.log(np.asarray(new_ms, float))
    diff = float(new.mean() - base.mean())
    if np.ptp(base) == 0 and np.ptp(new) == 0:
        return math.exp(diff), math.exp(diff), math.exp(diff)  # no spread at all: exact
    interval = sps.ttest_ind(new, base, equal_var=False).confidence_interval(confidence_level=confidence)
    return math.exp(diff), math.exp(interval.low), math.exp(interval.high)


def _geomean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def judge(
    key: RunKey,
    baseline: Sequence[BaselineRun],
    new: Sequence[RunRecord],
    *,
    threshold: float,
    confidence: float,
) -> Verdict:
    """One key's verdict from its baseline runs and its new runs."""
    base_ms = [r.median_ms for r in baseline]
    new_ms = [r.stats.median_ms for r in new if r.stats is not None]
    common = dict(
        key=key,
        baseline_ms=_geomean(base_ms),
        new_ms=_geomean(new_ms) if new_ms else None,
        baseline_runs=len(base_ms),
        new_runs=len(new_ms),
        new_run_ids=tuple(r.id for r in new),
    )
    if not new_ms:
        return Verdict(status="unknown", ratio=None, ci_low=None, ci_high=None, spread=None,
                       note="no run since the baseline: profile it (with --repeat 3)", **common)  # fmt: skip
    ratio = common["new_ms"] / common["baseline_ms"]
    if len(base_ms) < MIN_RUNS or len(new_ms) < MIN_RUNS:
        sides = []
        if len(base_ms) < MIN_RUNS:
            sides.append(f"the baseline has {len(base_ms)} run(s): rewrite it with --update-baseline")
        if len(new_ms) < MIN_RUNS:
            sides.append(f"{len(new_ms)} new run(s)")
        return Verdict(
            status="unknown", ratio=ratio, ci_low=None, ci_high=None, spread=None,
            note=f"need {MIN_RUNS} runs a side ({'; '.join(sides)}); profile with --repeat {MIN_RUNS}",
            **common,
        )  # fmt: skip
    ratio, low, high = run_level_interval(base_ms, new_ms, confidence)
    spread = max(float(np.std(np.log(base_ms), ddof=1)), float(np.std(np.log(new_ms), ddof=1)))
    status = str(classify(np.array(ratio), np.array(low), np.array(high), threshold))
    note = ""
    if status == "unknown":
        note = (
            f"between-run spread {spread:.1%} too wide to resolve {threshold:.0%} with "
            f"{len(base_ms)}+{len(new_ms)} runs: add runs (--repeat)"
        )
    return Verdict(status=status, ratio=ratio, ci_low=low, ci_high=high, spread=spread, note=note, **common)


def _check_options(threshold: float, alpha: float, runs: int) -> None:
    if not 0 < threshold < 1:
        raise UsageError(f"threshold must be a fraction in (0, 1), got {threshold}")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    if runs < MIN_RUNS:
        raise UsageError(f"runs must be at least {MIN_RUNS} (the fewest that show a between-run spread), got {runs}")


def compare(
    store: ResultsStore,
    baseline: Path,
    *,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    runs: int = DEFAULT_RUNS,
) -> RegressReport:
    """Compare the newest runs with the baseline (see the module docstring)."""
    _check_options(threshold, alpha, runs)
    by_key: dict[RunKey, list[BaselineRun]] = {}
    for row in read_baseline(baseline):
        if _matches(row.key, device, runtime, dtype):
            by_key.setdefault(row.key, []).append(row)
    if not by_key:
        raise UsageError(f"baseline {baseline} has no rows for the selected device/runtime/dtype")
    if not store.runs(device=device, runtime=runtime, dtype=dtype, status="ok", purpose="latency", limit=1):
        raise UsageError(f"no successful runs in {store.location} for the selected device/runtime/dtype")
    after = {key: max(r.created_at or "" for r in rows) for key, rows in by_key.items()}
    fresh = newest_runs(store, per_key=runs, after=after, device=device, runtime=runtime, dtype=dtype)
    confidence = 1 - alpha / len(by_key)
    verdicts = [
        judge(key, rows, fresh.get(key, []), threshold=threshold, confidence=confidence)
        for key, rows in sorted(by_key.items())
    ]
    for key in sorted(set(fresh) - set(by_key)):
        new_ms = [r.stats.median_ms for r in fresh[key] if r.stats is not None]
        verdicts.append(
            Verdict(
                key=key, status="new", baseline_ms=None, new_ms=_geomean(new_ms), ratio=None, ci_low=None,
                ci_high=None, baseline_runs=0, new_runs=len(new_ms), spread=None,
                new_run_ids=tuple(r.id for r in fresh[key]), note="not in the baseline",
            )
        )  # fmt: skip
    return RegressReport(baseline=baseline, threshold=threshold, alpha=alpha, confidence=confidence, verdicts=verdicts)


@dataclass(frozen=True)
class BaselineUpdate:
    """What :func:`update_baseline` wrote: runs and keys from the database, keys kept."""

    runs: int
    keys: int
    kept_keys: int
    short: tuple[RunKey, ...]  # keys written with fewer than MIN_RUNS runs


def update_baseline(
    store: ResultsStore,
    baseline: Path,
    *,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
    runs: int = DEFAULT_RUNS,
) -> BaselineUpdate:
    """Rewrite the baseline's keys that have runs matching the filters from their newest
    ``runs`` runs; every other key's rows are kept as they are."""
    if runs < MIN_RUNS:
        raise UsageError(f"runs must be at least {MIN_RUNS} (the fewest that show a between-run spread), got {runs}")
    newest = newest_runs(store, per_key=runs, device=device, runtime=runtime, dtype=dtype)
    if not newest:
        raise UsageError(f"no successful runs in {store.location} for the selected device/runtime/dtype")
    fresh = [baseline_run(store, run) for chosen in newest.values() for run in chosen]
    kept = [r for r in read_baseline(baseline, allow_empty=True) if r.key not in newest] if baseline.is_file() else []
    write_baseline(baseline, [*fresh, *kept])
    short = tuple(sorted(key for key, chosen in newest.items() if len(chosen) < MIN_RUNS))
    return BaselineUpdate(runs=len(fresh), keys=len(newest), kept_keys=len({r.key for r in kept}), short=short)
