"""The runner's statistics: the order-statistics CI of the median and the stopping rules.

The C++ interval code is compiled here on its own and compared with scipy's binomial
distribution; the runner's summaries are then recomputed from its own iteration lines.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import binom

from mobilebench.paths import project_root

SRC = project_root() / "android_app" / "runner" / "src"
CONFIDENCE = 0.95
# Iteration times are printed with 6 decimals; summaries are computed from the exact values.
PRINT_TOL_MS = 1.5e-6


def reference_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """Largest k with coverage 1 - 2 P(Bin(n, 1/2) <= k-1) >= confidence, per scipy."""
    ks = np.arange(1, n // 2 + 2)
    coverage = 1 - 2 * binom.cdf(ks - 1, n, 0.5)
    ok = ks[coverage >= confidence]
    if ok.size == 0:
        return None
    k = int(ok.max())
    return k, n + 1 - k, float(1 - 2 * binom.cdf(k - 1, n, 0.5))


def reference_rel_halfwidth(samples: list[float]) -> float | None:
    xs = sorted(samples)
    ranks = reference_ranks(len(xs))
    if ranks is None:
        return None
    median = statistics.median(xs)
    return max(median - xs[ranks[0] - 1], xs[ranks[1] - 1] - median) / median


@pytest.fixture(scope="module")
def median_ci_tool(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[str]]:
    compiler = shutil.which("g++") or shutil.which("c++")
    assert compiler, "a C++ compiler is needed (make test installs g++)"
    binary = tmp_path_factory.mktemp("median_ci") / "median_ci_check"
    subprocess.run(
        [compiler, "-std=c++17", "-O2", "-I", str(SRC), str(SRC / "median_ci.cpp"),
         str(Path(__file__).with_name("median_ci_check.cpp")), "-o", str(binary)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    def ask(commands: str) -> list[str]:
        out = subprocess.run([str(binary)], input=commands, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.splitlines()

    return ask


def test_interval_ranks_match_scipy(median_ci_tool: Callable[[str], list[str]]) -> None:
    sizes = list(range(1, 400)) + [500, 999, 1000, 1001, 4096, 10_000, 65_537]
    answers = median_ci_tool("".join(f"ranks {n} {CONFIDENCE}\n" for n in sizes))
    for n, answer in zip(sizes, answers, strict=True):
        expected = reference_ranks(n)
        if expected is None:
            assert answer == f"{n} none"
            continue
        got_n, low, high, coverage = answer.split()
        assert (int(got_n), int(low), int(high)) == (n, expected[0], expected[1]), n
        assert float(coverage) == pytest.approx(expected[2], rel=1e-9), n
        assert float(coverage) >= CONFIDENCE
    # No interval below 6 samples; exactly [min, max] at 6 (coverage 1 - 2/64).
    assert answers[4] == "5 none"
    assert answers[5].split()[:3] == ["6", "1", "6"] and float(answers[5].split()[3]) == 1 - 2 / 64


def test_other_confidence_levels(median_ci_tool: Callable[[str], list[str]]) -> None:
    cases = [(n, c) for n in (10, 37, 100, 1234) for c in (0.5, 0.9, 0.99)]
    answers = median_ci_tool("".join(f"ranks {n} {c}\n" for n, c in cases))
    for (n, c), answer in zip(cases, answers, strict=True):
        expected = reference_ranks(n, c)
        assert expected is not None
        assert [int(v) for v in answer.split()[:3]] == [n, expected[0], expected[1]], (n, c)


def test_binomial_cdf_is_accurate(median_ci_tool: Callable[[str], list[str]]) -> None:
    cases = [(1, 0), (6, 0), (10, 3), (100, 40), (101, 50), (1000, 469), (100_000, 49_000), (100_000, 50_100)]
    answers = median_ci_tool("".join(f"cdf {n} {k}\n" for n, k in cases))
    for (n, k), answer in zip(cases, answers, strict=True):
        assert float(answer) == pytest.approx(binom.cdf(k, n, 0.5), rel=1e-9, abs=1e-300), (n, k)


def check_summary(result: Any) -> dict[str, Any]:
    """The summary agrees with statistics recomputed from the iteration lines."""
    summary = result.one("summary")
    timed = result.timed_ms
    assert summary["iterations"] == len(timed)
    assert summary["median_ms"] == pytest.approx(statistics.median(timed), abs=PRINT_TOL_MS)
    assert summary["mean_ms"] == pytest.approx(statistics.fmean(timed), abs=PRINT_TOL_MS)
    assert summary["min_ms"] == pytest.approx(min(timed), abs=PRINT_TOL_MS)
    assert summary["max_ms"] == pytest.approx(max(timed), abs=PRINT_TOL_MS)
    if len(timed) > 1:
        assert summary["std_ms"] == pytest.approx(statistics.stdev(timed), abs=1e-5)
    assert summary["timed_s"] == pytest.approx(sum(timed) / 1000, abs=len(timed) * 1e-9 + 1e-9)
    ranks = reference_ranks(len(timed))
    if ranks is None:
        assert summary["ci95_low_ms"] is None and summary["ci95_high_ms"] is None
    else:
        xs = sorted(timed)
        assert summary["ci95_low_ms"] == pytest.approx(xs[ranks[0] - 1], abs=PRINT_TOL_MS)
        assert summary["ci95_high_ms"] == pytest.approx(xs[ranks[1] - 1], abs=PRINT_TOL_MS)
        assert summary["ci95_coverage"] == pytest.approx(ranks[2], rel=1e-9)
    # Warm-up lines come first, numbered 0..W-1, then timed ones; i is unique.
    indices = [e["i"] for e in result.of("iteration")]
    assert indices == list(range(len(indices)))
    flags = [e["warmup"] for e in result.of("iteration")]
    assert flags == [True] * summary["warmup"] + [False] * len(timed)
    return summary


def test_fixed_iterations(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    result = run_runner("--model", tiny_pte, "--warmup", "3", "--iterations", "25")
    assert result.returncode == 0, result.describe()
    summary = check_summary(result)
    assert (summary["iterations"], summary["warmup"], summary["stop_reason"]) == (25, 3, "iterations")
    assert all(e["ms"] > 0 for e in result.of("iteration"))


@pytest.mark.slow
def test_stops_at_the_first_iteration_whose_ci_is_within_target(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    target = 0.05
    result = run_runner(
        "--model", tiny_pte, "--warmup", "5", "--iterations", "3",
        "--target-rel-ci", str(target), "--max-iterations", "3000",
    )  # fmt: skip
    assert result.returncode == 0, result.describe()
    summary = check_summary(result)
    timed = result.timed_ms
    n = len(timed)
    if summary["stop_reason"] == "max_iterations":  # a very noisy machine: the cap held
        assert n == 3000
        return
    assert summary["stop_reason"] == "ci_target", summary
    assert n >= 6  # no 95% interval exists below 6 samples
    assert summary["ci_rel_halfwidth"] <= target
    assert reference_rel_halfwidth(timed) <= target + 1e-4
    # ...and no earlier prefix (of at least --iterations samples) met the target.
    for m in range(3, n):
        width = reference_rel_halfwidth(timed[:m])
        assert width is None or width > target - 1e-4, f"the target was met at {m} < {n} samples"


def test_ci_target_needs_six_samples(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    # A target every interval meets: the first interval exists at n = 6.
    result = run_runner("--model", tiny_pte, "--warmup", "0", "--iterations", "1", "--target-rel-ci", "0.999")
    assert result.returncode == 0, result.describe()
    summary = check_summary(result)
    assert summary["stop_reason"] == "ci_target" and summary["iterations"] >= 6
    first_six = reference_rel_halfwidth(result.timed_ms[:6])
    if first_six is not None and first_six <= 0.999 - 1e-4:  # (unless an outlier doubled the max)
        assert summary["iterations"] == 6


def test_max_iterations_caps_an_unreachable_target(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    result = run_runner(
        "--model", tiny_pte, "--warmup", "0", "--iterations", "2",
        "--target-rel-ci", "1e-9", "--max-iterations", "17",
    )  # fmt: skip
    assert result.returncode == 0, result.describe()
    summary = check_summary(result)
    assert (summary["iterations"], summary["stop_reason"], summary["target_rel_ci"]) == (17, "max_iterations", 1e-9)
    assert result.one("start")["max_iterations"] == 17


def test_min_seconds(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    result = run_runner(
        "--model", tiny_pte, "--warmup", "0", "--iterations", "5",
        "--min-seconds", "0.02", "--max-iterations", "1000000",
    )  # fmt: skip
    assert result.returncode == 0, result.describe()
    summary = check_summary(result)
    timed = result.timed_ms
    assert summary["stop_reason"] == "min_seconds"
    assert summary["timed_s"] >= 0.02
    assert len(timed) >= 5
    if len(timed) > 5:  # it stopped as soon as the time was reached
        assert sum(timed[:-1]) / 1000 < 0.02 + 1e-6
