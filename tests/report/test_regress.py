"""Regression verdicts: real slowdowns caught, noise not, missing models not passed silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobilebench.errors import UsageError
from mobilebench.report.regress import (
    BASELINE_COLUMNS,
    compare,
    read_baseline,
    update_baseline,
)
from mobilebench.store import ResultsStore

JITTER = [0.01 * ((i * 7) % 11 - 5) for i in range(30)]  # +-0.05 ms, deterministic


def steady(median_ms: float) -> list[float]:
    return [median_ms + j for j in JITTER]


# Wide spread: 6..14 ms around a median of 10 ms.
NOISY = [6.0 + 0.5 * i for i in range(17)]


@pytest.fixture
def baseline(tmp_path, add_run) -> Path:
    """A baseline written by --update-baseline from a first database (as CI would commit it)."""
    with ResultsStore(tmp_path / "baseline-run.sqlite") as old:
        for model in ("m_slow", "m_same", "m_fast", "m_gone", "m_summary"):
            add_run(old, model, "pixel4", steady(10.0))
        add_run(old, "m_noisy", "pixel4", NOISY)
        add_run(old, "m_slow", "host", steady(2.0))  # another device: filtered out below
        path = tmp_path / "baselines" / "pixel4.csv"
        assert update_baseline(old, path) == (7, 0)
    return path


@pytest.fixture
def newer(store, add_run):
    add_run(store, "m_slow", "pixel4", steady(11.0))  # +10%, low noise: a regression
    add_run(store, "m_noisy", "pixel4", [x + 1.0 for x in NOISY])  # +10% inside heavy noise
    add_run(store, "m_same", "pixel4", steady(10.0))
    add_run(store, "m_fast", "pixel4", steady(8.0))  # -20%: an improvement
    add_run(store, "m_summary", "pixel4", steady(12.0), summary_only=True)  # +20%, no samples
    add_run(store, "m_new", "pixel4", steady(5.0))
    return store


def by_model(report):
    return {v.key.model: v for v in report.verdicts}


def test_baseline_file_keeps_the_samples(baseline):
    assert baseline.read_text().splitlines()[0] == ",".join(BASELINE_COLUMNS)
    entries = {(e.key.model, e.key.device): e for e in read_baseline(baseline)}
    assert len(entries) == 7
    slow = entries[("m_slow", "pixel4")]
    assert slow.samples_ms == tuple(steady(10.0)) and slow.n == 30 and slow.median_ms == pytest.approx(10.0)
    assert slow.run_id is not None and slow.key.runtime == "executorch" and not slow.key.emulated


def test_verdicts(newer, baseline):
    report = compare(newer, baseline, device="pixel4")
    verdicts = by_model(report)
    assert verdicts["m_slow"].status == "regression"
    assert verdicts["m_slow"].change == pytest.approx(0.10, abs=0.002)
    assert verdicts["m_slow"].p_value < 1e-6
    noisy = verdicts["m_noisy"]
    assert noisy.change == pytest.approx(0.10) and noisy.status == "not significant" and noisy.p_value > 0.01
    assert verdicts["m_same"].status == "unchanged"
    assert verdicts["m_fast"].status == "improvement" and verdicts["m_fast"].change == pytest.approx(-0.2, abs=0.002)
    assert verdicts["m_gone"].status == "missing" and verdicts["m_gone"].new_median_ms is None
    assert verdicts["m_summary"].status == "untestable"
    assert verdicts["m_new"].status == "new" and not verdicts["m_new"].failed
    assert "host" not in {v.key.device for v in report.verdicts}
    assert report.failed and report.exit_code == 1
    assert {v.key.model for v in report.verdicts if v.failed} == {"m_slow", "m_gone", "m_summary"}


def test_only_noise_and_improvements_pass(store, add_run, baseline, tmp_path):
    for model in ("m_same", "m_gone", "m_summary"):
        add_run(store, model, "pixel4", steady(10.2))  # +2%: under the threshold
    add_run(store, "m_noisy", "pixel4", [x + 1.0 for x in NOISY])
    add_run(store, "m_fast", "pixel4", steady(8.0))
    add_run(store, "m_slow", "pixel4", steady(10.4))  # +4%, significant but under 5%
    report = compare(store, baseline, device="pixel4")
    assert not report.failed and report.exit_code == 0
    assert by_model(report)["m_slow"].status == "unchanged"
    # A stricter threshold turns the consistent 4% into a regression.
    assert by_model(compare(store, baseline, device="pixel4", threshold=0.03))["m_slow"].status == "regression"


def test_cli_exit_codes_and_markdown(newer, baseline, db_path, tmp_path, cli):
    check = ("regress", "--baseline", baseline, "--device", "pixel4", "--db", db_path)
    result = cli(*check, "--format", "markdown")
    assert result.exit_code == 1, result.stderr
    out = result.stdout
    assert out.startswith("### :x: Latency regression check FAILED")
    assert "Mann-Whitney" in out and "| model | device |" in out and "| m_slow | pixel4 |" in out
    # The verdict is on stdout (redirected into the job summary in CI); the log gets one line.
    headline = "1 improvement, 1 missing, 1 new, 1 not significant, 1 regression, 1 unchanged, 1 untestable"
    assert result.stderr == f"error: latency regression check FAILED ({headline})\n"
    result = cli(*check, "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["failed"] is True
    assert {v["model"]: v["status"] for v in data["verdicts"]}["m_noisy"] == "not significant"
    result = cli(*check)
    assert result.exit_code == 1 and "regression" in result.stdout and "missing" in result.stdout


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
    result = cli("regress", "--baseline", baseline, "--db", tmp_path / "none.sqlite")
    assert result.exit_code == 2 and "no results database" in result.stderr
    result = cli("regress", "--baseline", baseline, "--db", db_path, "--threshold", "1.5")
    assert result.exit_code == 2 and "threshold" in result.stderr
    for args, message in {
        (): "the following arguments are required: --baseline",
        ("--baseline", baseline, "--format", "csv"): "argument --format: invalid choice: 'csv'",
        ("--baseline", baseline, "--threshold", "five"): "argument --threshold: invalid float value: 'five'",
    }.items():
        result = cli("regress", "--db", db_path, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_cli_update_baseline_then_pass(newer, baseline, db_path, cli):
    result = cli("regress", "--baseline", baseline, "--device", "pixel4", "--db", db_path, "--update-baseline")
    assert result.exit_code == 0, result.stderr
    assert "6 row(s) from the newest runs, 2 kept" in result.stderr  # m_gone and the host row are kept
    entries = {(e.key.model, e.key.device): e for e in read_baseline(baseline)}
    assert entries[("m_slow", "pixel4")].median_ms == pytest.approx(11.0)
    assert entries[("m_summary", "pixel4")].samples_ms == ()  # summary-only: no samples to keep
    assert ("m_slow", "host") in entries and ("m_gone", "pixel4") in entries
    assert [p.name for p in baseline.parent.iterdir()] == ["pixel4.csv"]  # atomic: no temp files
    report = compare(newer, baseline, device="pixel4")
    statuses = {v.key.model: v.status for v in report.verdicts}
    assert statuses == {m: "unchanged" for m in ("m_slow", "m_noisy", "m_same", "m_fast", "m_summary", "m_new")} | {
        "m_gone": "missing"
    }


def test_first_baseline_is_created(store, add_run, tmp_path, db_path, cli):
    add_run(store, "m", "host", steady(3.0))
    target = tmp_path / "new" / "host.csv"
    result = cli("regress", "--baseline", target, "--db", db_path, "--update-baseline")
    assert result.exit_code == 0, result.stderr
    assert target.is_file() and [e.key.model for e in read_baseline(target)] == ["m"]
    result = cli("regress", "--baseline", target, "--db", db_path)
    assert result.exit_code == 0 and result.stderr == ""


def test_cli_defaults_are_the_libraries():
    from mobilebench.cli import regress
    from mobilebench.cli.parsing import CommandParser
    from mobilebench.report.regress import DEFAULT_ALPHA, DEFAULT_THRESHOLD

    parser = CommandParser()
    regress.add_arguments(parser)
    args = parser.parse_args(["--baseline", "b.csv"])
    assert (args.threshold, args.alpha) == (DEFAULT_THRESHOLD, DEFAULT_ALPHA)


def test_invalid_threshold(store, baseline, add_run):
    add_run(store, "m_same")
    with pytest.raises(UsageError, match="threshold"):
        compare(store, baseline, threshold=1.5)
