"""Latency statistics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.stats import binom

from mobilebench.bench.stats import (
    CI_METHOD,
    CI_METHOD_SUMMARY,
    CI_METHOD_TOO_FEW,
    ci_is_tight,
    median_ci,
    median_ci_ranks,
    summarize,
    summary_stats,
    warnings,
)
from mobilebench.errors import MobilebenchError


def test_summarize_one_to_ten_by_hand():
    s = summarize([7, 3, 10, 1, 5, 2, 9, 4, 8, 6], load_ms=120.5, first_ms=42.0)
    assert s.n == 10
    assert s.median_ms == 5.5
    assert s.mean_ms == 5.5
    assert (s.min_ms, s.max_ms) == (1, 10)
    # Linear interpolation: index (n-1)*q = 0.9 -> 1 + 0.9 * (2 - 1); 8.1 -> 9 + 0.1.
    assert s.p10_ms == pytest.approx(1.9)
    assert s.p90_ms == pytest.approx(9.1)
    # Sum of squared deviations 82.5 over n - 1 = 9.
    assert s.std_ms == pytest.approx(math.sqrt(82.5 / 9))
    assert s.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)
    # |x - 5.5| = 4.5 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 4.5 -> median 2.5.
    assert s.mad_ms == 2.5
    # n = 10: P(B <= 1) = 11/1024 = 1.07% <= 2.5%, P(B <= 2) = 56/1024 = 5.5% -> ranks 2 and 9.
    assert (s.ci_low_ms, s.ci_high_ms) == (2, 9)
    assert s.ci_method == CI_METHOD
    assert (s.load_ms, s.first_ms) == (120.5, 42.0)


def test_ci_ranks_small_n_by_hand():
    assert median_ci_ranks(5) is None  # full range covers only 1 - 2/32 = 93.75%
    assert median_ci_ranks(6) == (1, 6)  # 1 - 2/64 = 96.9%
    assert median_ci_ranks(8) == (1, 8)  # rank 2 would give 1 - 2*9/256 = 93.0%
    assert median_ci_ranks(9) == (2, 8)  # 1 - 2*10/512 = 96.1%


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_ci_ranks_agree_with_scipys_binomial_for_every_n(confidence):
    # The exact integer tail against scipy's, for every sample count a run has.
    for n in range(1, 1201):
        ranks = median_ci_ranks(n, confidence)
        j = int(np.count_nonzero(binom.cdf(np.arange(n // 2 + 1), n, 0.5) <= (1 - confidence) / 2 * (1 + 1e-12)))
        assert ranks == ((j, n + 1 - j) if j else None), n


@pytest.mark.parametrize("n", [6, 7, 13, 20, 31, 50, 101, 400])
def test_ci_ranks_are_the_tightest_with_95_percent_coverage(n):
    j, k = median_ci_ranks(n)
    assert k == n + 1 - j
    assert 1 - 2 * binom.cdf(j - 1, n, 0.5) >= 0.95
    assert 1 - 2 * binom.cdf(j, n, 0.5) < 0.95


@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 10, 33, 64, 257, 2000, 5001])
def test_ci_ranks_match_scipy_binomial_quantile(n):
    # The tightest interval is j = the 2.5 % binomial quantile (plus one when the tail at
    # that quantile is still within 2.5 %); no interval when j would be 0.
    k = int(binom.ppf(0.025, n, 0.5))
    j = k + 1 if binom.cdf(k, n, 0.5) <= 0.025 else k
    assert median_ci_ranks(n) == ((j, n + 1 - j) if j >= 1 else None)


def test_ci_ranks_allow_a_tail_exactly_at_the_limit():
    # n = 5, confidence 1 - 2/32: the full range misses with probability exactly 2/32.
    assert median_ci_ranks(5, 1 - 2 / 32) == (1, 5)
    assert median_ci_ranks(5, 1 - 2 / 32 + 1e-9) is None
    # n = 10, confidence 1 - 2 * 11/1024: ranks 2 and 9 exactly at the limit.
    assert median_ci_ranks(10, 1 - 22 / 1024) == (2, 9)


@pytest.mark.parametrize("seed", range(5))
def test_summary_matches_scipy_and_numpy_definitions(seed):
    rng = np.random.default_rng(seed)
    xs = rng.lognormal(2.0, 0.3, size=int(rng.integers(6, 300)))
    s = summarize(xs.tolist())
    p10, p90 = sps.quantile(xs, [0.10, 0.90], method="linear")  # type 7, scipy's own code
    assert s.p10_ms == pytest.approx(p10, rel=1e-12) and s.p90_ms == pytest.approx(p90, rel=1e-12)
    assert s.mad_ms == pytest.approx(float(np.median(np.abs(xs - np.median(xs)))), rel=1e-12)
    assert s.std_ms == pytest.approx(sps.tstd(xs), rel=1e-12)
    assert s.median_ms == pytest.approx(float(np.median(xs)), rel=1e-12)
    j, k = median_ci_ranks(xs.size)
    ordered = np.sort(xs)
    assert (s.ci_low_ms, s.ci_high_ms) == (ordered[j - 1], ordered[k - 1])


def test_median_ci_covers_the_true_median_at_least_95_percent():
    # 20000 simulated runs of 31 exponential samples (true median ln 2).
    rng = np.random.default_rng(7)
    xs = np.sort(rng.exponential(size=(20000, 31)), axis=1)
    j, k = median_ci_ranks(31)
    covered = (xs[:, j - 1] <= math.log(2)) & (xs[:, k - 1] >= math.log(2))
    nominal = 1 - 2 * binom.cdf(j - 1, 31, 0.5)
    assert abs(covered.mean() - nominal) < 0.005 and nominal >= 0.95


def test_too_few_samples_have_no_interval():
    s = summarize([3.0, 1.0, 2.0, 4.0, 5.0])
    assert s.median_ms == 3.0
    assert s.ci_low_ms is None and s.ci_high_ms is None
    assert s.ci_method == CI_METHOD_TOO_FEW
    assert any("too few" in w for w in warnings(s))
    one = summarize([4.0])
    assert one.std_ms is None and one.cv is None and one.p90_ms == 4.0


def test_median_ci_of_six_is_the_range():
    assert median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (1.0, 6.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -2.0], [float("inf")]])
def test_invalid_samples_are_a_clear_error(bad):
    with pytest.raises(MobilebenchError):
        summarize(bad)


def test_ci_is_tight():
    steady = [100.0 + 0.1 * (i % 5) for i in range(30)]
    assert ci_is_tight(steady, 0.01)
    spread = [float(x) for x in range(50, 150)]
    # Median 99.5; the interval spans ranks 40..61 -> [89, 110], about +-10%.
    assert not ci_is_tight(spread, 0.05)
    assert ci_is_tight(spread, 0.12)
    assert not ci_is_tight([100.0] * 5, 0.5)  # no interval below 6 samples
    with pytest.raises(MobilebenchError):
        ci_is_tight(steady, 0)


def test_warnings_for_noise_throttling_and_heat():
    clean = summarize([10.0, 10.1, 10.0, 9.9, 10.0, 10.1, 10.0])
    assert warnings(clean, {"freq_khz": 2_841_600, "temp_c": 35.0}, {"freq_khz": 2_841_600, "temp_c": 40.0}) == []
    noisy = summarize([10.0, 14.0, 10.0, 9.0, 13.0, 10.0, 8.0])
    assert any("coefficient of variation" in w for w in warnings(noisy))
    throttled = warnings(clean, {"freq_khz": 2_841_600}, {"freq_khz": 1_804_800})
    assert len(throttled) == 1 and "frequency" in throttled[0]
    hot = warnings(clean, {"temp_c": 30.0}, {"temp_c": 45.5})
    assert len(hot) == 1 and "temperature" in hot[0]
    # Missing keys skip the checks instead of failing.
    assert warnings(clean, {}, None) == []


def test_summary_stats_keep_only_what_was_reported():
    s = summary_stats(n=100, median_ms=9.5, mean_ms=9.8, min_ms=9.0, max_ms=14.0, p90_ms=10.5, first_ms=30.0)
    assert s.from_summary and s.ci_method == CI_METHOD_SUMMARY
    assert s.std_ms is None and s.mad_ms is None and s.ci_low_ms is None and s.p10_ms is None
    assert (s.n, s.median_ms, s.p90_ms, s.first_ms) == (100, 9.5, 10.5, 30.0)
    assert any("summary only" in w for w in warnings(s))
