"""Regression verdicts on run-level statistics: a clear slowdown caught, run-to-run noise
called unknown instead of a confident false verdict, too few runs never decided."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from mobilebench.bench.stats import summarize
from mobilebench.errors import UsageError
from mobilebench.records import RunMeta, Sample
from mobilebench.report.regress import (
    BASELINE_COLUMNS,
    MIN_RUNS,
    compare,
    read_baseline,
    run_level_interval,
    update_baseline,
)
from mobilebench.store import ResultsStore

JITTER = [0.001 * ((i * 7) % 11 - 5) for i in range(30)]  # +-0.5 %, deterministic


def steady(median_ms: float) -> list[float]:
    """A run whose iterations agree to +-0.5 %: tight within, whatever happens between runs."""
    return [median_ms * (1 + j) for j in JITTER]


def add_runs(add_run, store, model: str, medians: list[float], device: str = "pixel4") -> list[int]:
    return [add_run(store, model, device, steady(m)) for m in medians]


def by_model(report):
    return {v.key.model: v for v in report.verdicts}


@pytest.fixture
def baseline(tmp_path, add_run) -> Path:
    """A baseline written by --update-baseline in the lab: three runs per model."""
    with ResultsStore(tmp_path / "lab.sqlite") as lab:
        add_runs(add_run, lab, "m_old", [30.0, 30.0, 30.0])  # older runs: not in the baseline
        for model in ("m_slow", "m_same", "m_fast", "m_noisy", "m_gone", "m_few"):
            add_runs(add_run, lab, model, [10.0, 10.05, 9.98])
        add_runs(add_run, lab, "m_old", [10.0, 10.05, 9.98])
        add_runs(add_run, lab, "m_slow", [2.0, 2.0, 2.01], device="host")  # another device
        path = tmp_path / "baselines" / "pixel4.csv"
        update = update_baseline(lab, path)
        assert (update.runs, update.keys, update.kept_keys, update.short) == (24, 8, 0, ())
    return path


@pytest.fixture
def newer(store, add_run, baseline):
    add_runs(add_run, store, "m_slow", [11.0, 11.1, 10.95])  # +10 %, runs agree: slower
    add_runs(add_run, store, "m_same", [10.05, 9.98, 10.02])
    add_runs(add_run, store, "m_fast", [8.0, 8.1, 7.95])
    # +10 % on average, but the runs differ by 15 % from one another: iterations within
    # each run are tight (Mann-Whitney on them would say p < 1e-10), the runs are not.
    add_runs(add_run, store, "m_noisy", [10.0, 12.6, 10.6])
    add_runs(add_run, store, "m_few", [10.0, 10.1])  # two runs: not enough
    add_runs(add_run, store, "m_old", [10.0, 10.03, 9.99])
    add_runs(add_run, store, "m_new", [5.0])
    return store


def test_baseline_keeps_every_run(baseline):
    lines = baseline.read_text().splitlines()
    assert lines[0] == ",".join(BASELINE_COLUMNS) and len(lines) == 1 + 24
    runs = read_baseline(baseline)
    slow = [r for r in runs if (r.key.model, r.key.device) == ("m_slow", "pixel4")]
    assert [r.median_ms for r in slow] == [pytest.approx(m) for m in (10.0, 10.05, 9.98)]  # oldest first
    assert all(r.samples_ms and r.n == 30 and r.run_id is not None and r.created_at for r in slow)
    old = [r.median_ms for r in runs if r.key.model == "m_old"]
    assert old == [pytest.approx(m) for m in (10.0, 10.05, 9.98)]  # the newest three, not the 30 ms ones


def test_verdicts(newer, baseline):
    report = compare(newer, baseline, device="pixel4")
    v = by_model(report)
    assert v["m_slow"].status == "slower" and v["m_slow"].ratio == pytest.approx(1.1, abs=0.002)
    assert v["m_slow"].ci_low > 1 and (v["m_slow"].baseline_runs, v["m_slow"].new_runs) == (3, 3)
    assert v["m_same"].status == "same" and 0.95 <= v["m_same"].ci_low <= v["m_same"].ci_high <= 1.05
    assert v["m_fast"].status == "faster" and v["m_fast"].ci_high < 1
    noisy = v["m_noisy"]
    assert noisy.status == "unknown" and noisy.ratio == pytest.approx(1.1, abs=0.01)
    assert noisy.ci_low < 1.05 < noisy.ci_high and "between-run spread" in noisy.note and "--repeat" in noisy.note
    few = v["m_few"]
    assert few.status == "unknown" and few.ci_low is None and "2 new run(s)" in few.note and "--repeat 3" in few.note
    assert v["m_gone"].status == "unknown" and "no run since the baseline" in v["m_gone"].note
    assert v["m_old"].status == "same"  # the 30 ms runs are older than the baseline's
    assert v["m_new"].status == "new" and v["m_new"].new_runs == 1
    assert "host" not in {x.key.device for x in report.verdicts}
    assert report.exit_code == 1  # slower wins over unknown
    assert report.confidence == pytest.approx(1 - 0.05 / 7)  # seven baseline keys on pixel4


def test_pooled_iterations_would_have_called_the_noise_significant(newer, baseline):
    # The old method, for contrast: one run against one run, iterations as replicates.
    noisy_new = [r for r in newer.runs(model="m_noisy")][1]  # the 12.6 ms run
    iterations = [s.latency_ms for s in newer.samples(noisy_new.id) if not s.warmup]
    p = sps.mannwhitneyu(iterations, steady(10.0), alternative="greater").pvalue
    assert p < 1e-10
    assert by_model(compare(newer, baseline, device="pixel4"))["m_noisy"].status == "unknown"


def test_unknown_when_between_run_spread_exceeds_the_threshold(store, add_run, baseline):
    # No real change at all, but run medians that wander by +-8 %: no confident verdict.
    add_runs(add_run, store, "m_same", [9.2, 10.8, 10.0])
    v = by_model(compare(store, baseline, device="pixel4"))["m_same"]
    assert v.status == "unknown" and v.spread > 0.05


def test_only_same_and_faster_pass(store, add_run, baseline, tmp_path):
    for model in ("m_slow", "m_same", "m_noisy", "m_gone", "m_few", "m_old"):
        add_runs(add_run, store, model, [10.2, 10.15, 10.22])  # +2 %: under the threshold
    add_runs(add_run, store, "m_fast", [8.0, 8.1, 7.95])
    report = compare(store, baseline, device="pixel4")
    assert {v.status for v in report.verdicts} == {"same", "faster"} and report.exit_code == 0
    # At a 1 % threshold the same +2 %, from runs that agree to 0.4 %, is a regression.
    strict = compare(store, baseline, device="pixel4", threshold=0.01)
    assert by_model(strict)["m_slow"].status == "slower" and strict.exit_code == 1


def test_run_level_interval_is_welch_on_log_medians():
    base, new = [10.0, 10.2, 9.9, 10.1], [10.6, 10.9, 10.7]
    ratio, low, high = run_level_interval(base, new, 0.95)
    lb, ln = np.log(base), np.log(new)
    assert ratio == pytest.approx(math.exp(ln.mean() - lb.mean()))
    se = math.sqrt(ln.var(ddof=1) / 3 + lb.var(ddof=1) / 4)
    df = se**4 / ((ln.var(ddof=1) / 3) ** 2 / 2 + (lb.var(ddof=1) / 4) ** 2 / 3)  # Welch-Satterthwaite
    half = sps.t.ppf(0.975, df) * se
    assert (low, high) == (
        pytest.approx(math.exp(ln.mean() - lb.mean() - half)),
        pytest.approx(math.exp(ln.mean() - lb.mean() + half)),
    )
    assert run_level_interval([5.0] * 3, [6.0] * 3, 0.95) == (pytest.approx(1.2),) * 3


def test_run_level_coverage_and_false_verdicts_in_simulation():
    # Run medians log-normal around the truth, 3 a side; the interval covers at 95 %,
    # and a check with no change says "slower" at most alpha/2 of the time.
    rng = np.random.default_rng(1)
    spread, hits, false = 0.01, 0, 0
    trials = 2000
    for _ in range(trials):
        base = 10 * np.exp(rng.normal(0, spread, 3))
        new = 10 * 1.03 * np.exp(rng.normal(0, spread, 3))
        _, low, high = run_level_interval(base, new, 0.95)
        hits += low <= 1.03 <= high
        same = 10 * np.exp(rng.normal(0, spread, 3))
        r, lo, _ = run_level_interval(base, same, 0.95)
        false += lo > 1 and r > 1.005
    assert 0.93 <= hits / trials <= 0.97 and false / trials <= 0.025


def test_old_single_run_baseline_is_read_and_undecided(store, add_run, tmp_path):
    old = tmp_path / "old.csv"  # one row per key: what earlier versions wrote
    samples = " ".join(repr(x) for x in steady(10.0))
    old.write_text(
        ",".join(BASELINE_COLUMNS) + "\n"
        f"m_a,pixel4,executorch,fp32,0,10.0,30,7,2026-01-01T00:00:00.000000+00:00,{samples}\n"
    )
    add_runs(add_run, store, "m_a", [12.0, 12.1, 12.05])
    v = compare(store, old).verdicts[0]
    assert v.status == "unknown" and "the baseline has 1 run(s): rewrite it with --update-baseline" in v.note


def test_interleaved_comparison_runs_are_left_out(store, add_run, baseline):
    add_runs(add_run, store, "m_same", [10.0, 10.05, 9.98])
    comparison = store.start_comparison(
        baseline="m_same", candidate="m_same", device_profile="pixel4", mode="interleaved", threshold=0.02
    )
    meta = RunMeta(model="m_same", runtime="executorch", backend="xnnpack", dtype="fp32", device_profile="pixel4",
                   comparison_id=comparison)  # fmt: skip
    run_id = store.start_run(meta)
    store.complete_run(
        run_id, meta, summarize(steady(20.0)), [Sample(i, ms, pair=i) for i, ms in enumerate(steady(20.0))]
    )
    v = by_model(compare(store, baseline, device="pixel4"))["m_same"]
    assert v.status == "same" and run_id not in v.new_run_ids


def test_update_keeps_other_keys_and_warns_about_short_ones(store, add_run, baseline, db_path, cli):
    add_runs(add_run, store, "m_slow", [11.0, 11.1, 10.95, 11.05])  # four: the newest three are taken
    add_runs(add_run, store, "m_same", [10.0])
    result = cli("regress", "--baseline", baseline, "--device", "pixel4", "--db", db_path, "--update-baseline")
    assert result.exit_code == 0, result.stderr
    assert "4 run(s) of 2 model(s) (the newest 3 each), 6 model(s) kept" in result.stderr
    assert "warning: fewer than 3 runs of m_same" in result.stderr
    runs = read_baseline(baseline)
    assert [r.median_ms for r in runs if r.key == by_key(runs, "m_slow")] == [
        pytest.approx(m) for m in (11.1, 10.95, 11.05)
    ]
    assert len([r for r in runs if r.key.model == "m_slow" and r.key.device == "host"]) == 3
    assert [p.name for p in baseline.parent.iterdir()] == ["pixel4.csv"]  # atomic: no temp files


def by_key(runs, model, device="pixel4"):
    return next(r.key for r in runs if (r.key.model, r.key.device) == (model, device))


def test_cli_exit_codes_markdown_and_json(newer, baseline, db_path, cli):
    check = ("regress", "--baseline", baseline, "--device", "pixel4", "--db", db_path)
    result = cli(*check, "--format", "markdown")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith("### :x: Latency regression check FAILED")
    assert "Welch t interval" in result.stdout and "| model | device |" in result.stdout
    assert "| m_slow | pixel4 | executorch | fp32 |" in result.stdout
    headline = "1 faster, 1 new, 2 same, 1 slower, 3 unknown"
    assert result.stderr == f"error: latency regression check FAILED ({headline})\n"
    data = json.loads(cli(*check, "--format", "json").stdout)
    assert data["exit_code"] == 1 and data["test"].startswith("Welch")
    slow = {v["model"]: v for v in data["verdicts"]}["m_slow"]
    assert (
        slow["status"] == "slower" and slow["baseline_runs"] == slow["new_runs"] == 3 and len(slow["new_run_ids"]) == 3
    )
    table = cli(*check)
    assert table.exit_code == 1 and "slower" in table.stdout and "unknown" in table.stdout


def test_cli_unknown_exits_3_and_same_exits_0(store, add_run, baseline, db_path, cli):
    for model in ("m_slow", "m_same", "m_fast", "m_noisy", "m_gone", "m_old"):
        add_runs(add_run, store, model, [10.0, 10.1, 9.95])
    add_runs(add_run, store, "m_few", [10.0, 10.1])
    check = ("regress", "--baseline", baseline, "--device", "pixel4", "--db", db_path)
    result = cli(*check, "--format", "markdown")
    assert result.exit_code == 3 and result.stdout.startswith("### :grey_question: Latency regression check UNDECIDED")
    assert "UNDECIDED (6 same, 1 unknown)" in result.stderr
    add_run(store, "m_few", "pixel4", steady(10.0))
    result = cli(*check)
    assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_cli_usage_errors_exit_2(store, baseline, db_path, tmp_path, cli, add_run):
    result = cli("regress", "--baseline", tmp_path / "none.csv", "--db", db_path)
    assert result.exit_code == 2 and "not found" in result.stderr
    result = cli("regress", "--baseline", baseline, "--db", db_path)  # empty database
    assert result.exit_code == 2 and "no successful runs" in result.stderr
    add_run(store, "m_same", "pixel4", steady(10.0))
    broken = tmp_path / "broken.csv"
    broken.write_text(baseline.read_text().replace("executorch", "", 1))
    result = cli("regress", "--baseline", broken, "--db", db_path)
    assert result.exit_code == 2 and "line 2: empty runtime" in result.stderr
    twice = tmp_path / "twice.csv"
    lines = baseline.read_text().splitlines()
    twice.write_text("\n".join([*lines, lines[1]]) + "\n")
    result = cli("regress", "--baseline", twice, "--db", db_path)
    assert result.exit_code == 2 and "appears twice" in result.stderr
    result = cli("regress", "--baseline", baseline, "--db", tmp_path / "none.sqlite")
    assert result.exit_code == 2 and "no results database" in result.stderr
    for args, message in {
        (): "the following arguments are required: --baseline",
        ("--baseline", baseline, "--format", "csv"): "argument --format: invalid choice: 'csv'",
        ("--baseline", baseline, "--threshold", "five"): "argument --threshold: 'five' is not a number",
        ("--baseline", baseline, "--threshold", "1.5"): "argument --threshold: 1.5 is above the maximum",
        ("--baseline", baseline, "--runs", "2"): f"argument --runs: 2 is below the minimum {MIN_RUNS}",
    }.items():
        result = cli("regress", "--db", db_path, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_first_baseline_is_created_then_waits_for_new_runs(store, add_run, tmp_path, db_path, cli):
    add_runs(add_run, store, "m", [3.0, 3.01, 2.99], device="host")
    target = tmp_path / "new" / "host.csv"
    result = cli("regress", "--baseline", target, "--db", db_path, "--update-baseline")
    assert result.exit_code == 0, result.stderr
    assert [r.key.model for r in read_baseline(target)] == ["m"] * 3
    result = cli("regress", "--baseline", target, "--db", db_path)
    assert result.exit_code == 3 and "1 unknown" in result.stderr  # nothing since the baseline
    add_runs(add_run, store, "m", [3.0, 3.02, 2.98], device="host")
    result = cli("regress", "--baseline", target, "--db", db_path)
    assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_invalid_options(store, baseline, add_run):
    add_run(store, "m_same")
    with pytest.raises(UsageError, match="threshold"):
        compare(store, baseline, threshold=1.5)
    with pytest.raises(UsageError, match="runs must be at least 3"):
        compare(store, baseline, runs=2)
