"""Latency regression verdicts: the newest runs against a committed baseline.

For every baseline row (model, device, runtime, dtype, emulated) the newest successful
run with the same key is compared with it. A **regression** needs both:

1. the new median exceeds the baseline median by more than the threshold
   (``new > baseline * (1 + threshold)``, default 5 %), and
2. the slowdown is significant on the per-iteration samples: a one-sided Mann-Whitney U
   test (``scipy.stats.mannwhitneyu``, alternative "new is slower") at ``alpha`` = 0.01.

The rank test makes no normality assumption and is robust to the long right tail of
latency distributions, so a shift inside heavy noise is not called a regression while
a small, consistent one is. Improvements are found the same way (mirror test).

Statuses: ``unchanged`` (within the threshold), ``regression``, ``improvement``,
``not significant`` (beyond the threshold, inside the noise), ``untestable`` (slower
beyond the threshold but too few per-iteration samples on either side for the test to
ever reach ``alpha``: summary-only runners, averaged samples, tiny runs), ``missing``
(a baseline model has no successful run), ``new`` (a run without a baseline row). The
check fails on ``regression``, ``untestable`` and ``missing``.

Baseline file: CSV with columns ``model, device, runtime, dtype, emulated, median_ms, n,
run_id, created_at, samples_ms`` where ``samples_ms`` is the run's timed per-iteration
latencies separated by spaces (empty for summary-only runners).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobilebench.errors import UsageError
from mobilebench.files import write_text_atomic
from mobilebench.report.formats import to_markdown
from mobilebench.report.selection import RunKey, newest_ok_runs
from mobilebench.records import RunRecord
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
DEFAULT_ALPHA = 0.01
TEST_NAME = "one-sided Mann-Whitney U on per-iteration samples"
FAILING = ("regression", "untestable", "missing")


@dataclass(frozen=True)
class BaselineEntry:
    key: RunKey
    median_ms: float
    n: int
    run_id: int | None
    created_at: str | None
    samples_ms: tuple[float, ...]


@dataclass(frozen=True)
class Verdict:
    key: RunKey
    status: str
    baseline_median_ms: float | None
    new_median_ms: float | None
    change: float | None  # new / baseline - 1
    p_value: float | None  # of the one-sided test in the direction of the change
    baseline_run_id: int | None
    new_run_id: int | None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass(frozen=True)
class RegressReport:
    baseline: Path
    threshold: float
    alpha: float
    verdicts: list[Verdict]

    @property
    def failed(self) -> bool:
        return any(v.failed for v in self.verdicts)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.status] = out.get(v.status, 0) + 1
        return out

    def headline(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items()))
        return f"{'FAILED' if self.failed else 'passed'} ({counts or 'nothing compared'})"

    COLUMNS = ("model", "device", "runtime", "dtype", "baseline_ms", "new_ms", "change", "p_value", "status", "note")

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for v in self.verdicts:
            out.append(
                {
                    "model": v.key.model,
                    "device": v.key.device + (" (emulated)" if v.key.emulated else ""),
                    "runtime": v.key.runtime,
                    "dtype": v.key.dtype,
                    "baseline_ms": _round(v.baseline_median_ms, 3),
                    "new_ms": _round(v.new_median_ms, 3),
                    "change": f"{v.change:+.1%}" if v.change is not None else None,
                    "p_value": float(f"{v.p_value:.3g}") if v.p_value is not None else None,
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
            "test": TEST_NAME,
            "failed": self.failed,
            "verdicts": [
                {
                    **row,
                    "change": v.change,
                    "p_value": v.p_value,
                    "emulated": v.key.emulated,
                    "device": v.key.device,
                    "baseline_run_id": v.baseline_run_id,
                    "new_run_id": v.new_run_id,
                }
                for v, row in zip(self.verdicts, self.rows(), strict=True)
            ],
        }

    def markdown(self) -> str:
        """A ``$GITHUB_STEP_SUMMARY`` section: headline, method, table."""
        icon = ":x:" if self.failed else ":white_check_mark:"
        lines = [
            f"### {icon} Latency regression check {self.headline()}",
            "",
            f"Baseline `{self.baseline}`; a regression is a median more than {self.threshold:.0%} slower "
            f"and significant by a {TEST_NAME} (alpha {self.alpha}).",
            "",
            to_markdown(self.COLUMNS, self.rows()),
        ]
        return "\n".join(lines)


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


# --- baseline files --------------------------------------------------------------------


def read_baseline(path: Path, *, allow_empty: bool = False) -> list[BaselineEntry]:
    """Parse a baseline CSV; any problem is a :class:`UsageError` naming the line."""
    if not path.is_file():
        raise UsageError(
            f"baseline {path} not found: create it with `mobilebench regress --baseline {path} --update-baseline`"
        )
    text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in BASELINE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UsageError(
            f"baseline {path} lacks column(s) {', '.join(missing)}; expected {', '.join(BASELINE_COLUMNS)}"
        )
    entries, seen = [], set()
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
            entry = BaselineEntry(
                key=key,
                median_ms=median,
                n=int(row["n"]) if row["n"] else len(samples),
                run_id=int(row["run_id"]) if row["run_id"] else None,
                created_at=row["created_at"] or None,
                samples_ms=samples,
            )
        except (ValueError, TypeError) as exc:
            raise UsageError(f"baseline {path}, line {line}: {exc}") from exc
        if key in seen:
            raise UsageError(f"baseline {path}, line {line}: {key.model} on {key.device} appears twice")
        seen.add(key)
        entries.append(entry)
    if not entries and not allow_empty:
        raise UsageError(f"baseline {path} has no rows")
    return entries


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


def baseline_entry(store: ResultsStore, run: RunRecord) -> BaselineEntry:
    from mobilebench.report.selection import run_key

    assert run.stats is not None
    samples = tuple(timed_samples(store, run))
    return BaselineEntry(run_key(run), run.stats.median_ms, run.stats.n, run.id, run.created_at, samples)


def write_baseline(path: Path, entries: Sequence[BaselineEntry]) -> None:
    """Write the baseline CSV atomically, rows sorted by device, runtime, dtype, model."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BASELINE_COLUMNS)
    for e in sorted(entries, key=lambda e: (e.key.device, e.key.emulated, e.key.runtime, e.key.dtype, e.key.model)):
        writer.writerow(
            [
                e.key.model, e.key.device, e.key.runtime, e.key.dtype, int(e.key.emulated),
                repr(e.median_ms), e.n, e.run_id if e.run_id is not None else "", e.created_at or "",
                " ".join(repr(x) for x in e.samples_ms),
            ]
        )  # fmt: skip
    write_text_atomic(path, out.getvalue())


# --- comparison ------------------------------------------------------------------------


def _matches(key: RunKey, device: str | None, runtime: str | None, dtype: str | None) -> bool:
    return (
        (device is None or key.device == device)
        and (runtime is None or key.runtime == runtime)
        and (dtype is None or key.dtype == dtype)
    )


def _can_reach(alpha: float, m: int, n: int) -> bool:
    """Whether an exact rank test with sample sizes m, n can produce p < alpha at all.

    The smallest one-sided p-value of the Mann-Whitney U test is 1 / C(m + n, m).
    """
    return m > 0 and n > 0 and math.comb(m + n, m) * alpha > 1


def compare_run(
    entry: BaselineEntry, run: RunRecord, new_samples: Sequence[float], *, threshold: float, alpha: float
) -> Verdict:
    """The verdict for one baseline entry and the newest matching run."""
    from scipy.stats import mannwhitneyu

    assert run.stats is not None
    new, base = run.stats.median_ms, entry.median_ms
    change = new / base - 1
    common = dict(key=entry.key, baseline_median_ms=base, new_median_ms=new, change=change,
                  baseline_run_id=entry.run_id, new_run_id=run.id)  # fmt: skip
    if abs(change) <= threshold:
        return Verdict(status="unchanged", p_value=None, **common)
    slower = change > 0
    testable = _can_reach(alpha, len(new_samples), len(entry.samples_ms))
    if not testable:
        counts = f"{len(new_samples)} new vs {len(entry.samples_ms)} baseline samples"
        if slower:
            return Verdict(
                status="untestable", p_value=None, note=f"too few per-iteration samples to test ({counts})", **common
            )
        return Verdict(
            status="not significant", p_value=None, note=f"faster, but too few samples to test ({counts})", **common
        )
    alternative = "greater" if slower else "less"
    p = float(mannwhitneyu(list(new_samples), list(entry.samples_ms), alternative=alternative).pvalue)
    if p < alpha:
        return Verdict(status="regression" if slower else "improvement", p_value=p, **common)
    return Verdict(status="not significant", p_value=p, note="change within run-to-run noise", **common)


def compare(
    store: ResultsStore,
    baseline: Path,
    *,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
) -> RegressReport:
    """Compare the newest successful runs with the baseline (see the module docstring)."""
    if not 0 <= threshold < 1:
        raise UsageError(f"threshold must be a fraction in [0, 1), got {threshold}")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    entries = [e for e in read_baseline(baseline) if _matches(e.key, device, runtime, dtype)]
    if not entries:
        raise UsageError(f"baseline {baseline} has no rows for the selected device/runtime/dtype")
    newest = {k: r for k, r in newest_ok_runs(store, device=device, runtime=runtime, dtype=dtype).items()}
    if not newest:
        raise UsageError(f"no successful runs in {store.path} for the selected device/runtime/dtype")
    verdicts = []
    for entry in entries:
        run = newest.get(entry.key)
        if run is None:
            verdicts.append(
                Verdict(
                    entry.key,
                    "missing",
                    entry.median_ms,
                    None,
                    None,
                    None,
                    entry.run_id,
                    None,
                    note="no successful run of this model in the results database",
                )  # fmt: skip
            )
            continue
        verdicts.append(compare_run(entry, run, timed_samples(store, run), threshold=threshold, alpha=alpha))
    known = {e.key for e in entries}
    for key in sorted(set(newest) - known):
        run = newest[key]
        assert run.stats is not None
        verdicts.append(
            Verdict(key, "new", None, run.stats.median_ms, None, None, None, run.id, note="not in the baseline")
        )
    return RegressReport(baseline=baseline, threshold=threshold, alpha=alpha, verdicts=verdicts)


def update_baseline(
    store: ResultsStore,
    baseline: Path,
    *,
    device: str | None = None,
    runtime: str | None = None,
    dtype: str | None = None,
) -> tuple[int, int]:
    """Rewrite the baseline from the newest successful runs matching the filters.

    Rows for other devices/runtimes/dtypes, and matching rows without a newer run, are
    kept. Returns (rows written from runs, rows kept).
    """
    newest = newest_ok_runs(store, device=device, runtime=runtime, dtype=dtype)
    if not newest:
        raise UsageError(f"no successful runs in {store.path} for the selected device/runtime/dtype")
    fresh = {key: baseline_entry(store, run) for key, run in newest.items()}
    kept = [e for e in read_baseline(baseline, allow_empty=True) if e.key not in fresh] if baseline.is_file() else []
    write_baseline(baseline, [*fresh.values(), *kept])
    return len(fresh), len(kept)
