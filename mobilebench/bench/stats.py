"""Latency statistics of one benchmark run, and the warnings that say when not to trust them.

Conventions (every number is in milliseconds unless its name says otherwise):

- Statistics describe the *timed* iterations only. The cold first iteration (``first_ms``)
  and the model load (``load_ms``) are kept apart: they measure different things (page
  faults, weight packing, cache warm-up) and would skew the steady state.
- Percentiles (``p10_ms``, ``p90_ms``) interpolate linearly between order statistics
  (``numpy.quantile``'s default ``method="linear"``, Hyndman-Fan type 7): for sorted
  ``x[0..n-1]`` and quantile ``q`` the value at fractional index ``(n - 1) * q``.
- ``std_ms`` is the sample standard deviation (n - 1 denominator); ``cv`` is
  ``std_ms / mean_ms`` as a fraction (0.05 = 5 %). Both need two samples.
- ``mad_ms`` is the raw median absolute deviation ``median(|x - median(x)|)``, not scaled
  by 1.4826.
- The 95 % confidence interval of the median uses order statistics, with no assumption
  about the shape of the distribution: the number of samples below the true median is
  Binomial(n, 1/2), so ``[x(j), x(n+1-j)]`` (1-based ranks) covers the median with
  probability ``1 - 2 * P(B <= j - 1)``. We take the largest ``j`` whose two-sided miss
  probability is at most 5 %, so the interval is conservative (coverage >= 95 %). That
  needs ``n >= 6`` (for n = 5 even the full range covers only 93.75 %); with fewer
  samples ``ci_low_ms``/``ci_high_ms`` are ``None`` and :func:`warnings` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

from mobilebench.errors import MobilebenchError
from mobilebench.records import CI_METHOD_SUMMARY, LatencyStats

#: Confidence level of the interval around the median.
CI_CONFIDENCE = 0.95
#: Fewest timed samples for which an order-statistics 95 % interval exists.
MIN_SAMPLES_FOR_CI = 6
CI_METHOD = "order statistics (binomial), 95%"
CI_METHOD_TOO_FEW = "none: fewer than 6 timed samples"

#: Warning thresholds (see :func:`warnings`).
MAX_CV = 0.05
MAX_FREQ_CHANGE = 0.05
MAX_TEMP_RISE_C = 10.0

# A binomial tail equal to the allowed miss probability counts as allowed; the slack
# absorbs the last-bit rounding of scipy's incomplete beta function at such ties.
_TIE_SLACK = 1e-12


def _check_ms(values: Sequence[float], what: str) -> np.ndarray:
    xs = np.asarray(values, dtype=float).ravel()
    bad = xs[~np.isfinite(xs) | (xs < 0)]
    if bad.size:
        raise MobilebenchError(f"{what} contains an invalid latency {float(bad[0])!r} (must be finite and >= 0)")
    return xs


@lru_cache(maxsize=1024)
def median_ci_ranks(n: int, confidence: float = CI_CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks ``(j, n + 1 - j)`` of the order-statistics CI of the median, or None.

    ``j`` is the largest rank with ``P(B <= j - 1) <= (1 - confidence) / 2`` for
    ``B ~ Binomial(n, 1/2)`` (the number of samples below the true median).
    """
    if n < 1:
        return None
    ks = np.arange(n // 2 + 1)
    tails = special.bdtr(ks, n, 0.5)  # the binomial CDF (what scipy.stats.binom.cdf computes)
    j = int(np.count_nonzero(tails <= (1 - confidence) / 2 * (1 + _TIE_SLACK)))
    if j == 0:
        return None
    return j, n + 1 - j


def median_ci(sorted_ms: Sequence[float], confidence: float = CI_CONFIDENCE) -> tuple[float, float] | None:
    """Order-statistics confidence interval of the median of sorted samples, or None."""
    ranks = median_ci_ranks(len(sorted_ms), confidence)
    if ranks is None:
        return None
    j, k = ranks
    return float(sorted_ms[j - 1]), float(sorted_ms[k - 1])


def summarize(
    samples_ms: Sequence[float], *, load_ms: float | None = None, first_ms: float | None = None
) -> LatencyStats:
    """Statistics of the timed iterations ``samples_ms`` (warm-up excluded by the caller)."""
    xs = np.sort(_check_ms(samples_ms, "timed samples"))
    if not xs.size:
        raise MobilebenchError("no timed iterations to summarize: the runner reported none")
    n = xs.size
    med = float(np.median(xs))
    mean = float(np.mean(xs))
    std = float(np.std(xs, ddof=1)) if n >= 2 else None
    cv = std / mean if std is not None and mean > 0 else None
    p10, p90 = (float(q) for q in np.quantile(xs, [0.10, 0.90], method="linear"))
    ci = median_ci(xs)
    return LatencyStats(
        n=n,
        median_ms=med,
        mean_ms=mean,
        min_ms=float(xs[0]),
        max_ms=float(xs[-1]),
        p10_ms=p10,
        p90_ms=p90,
        std_ms=std,
        cv=cv,
        mad_ms=float(np.median(np.abs(xs - med))),
        ci_low_ms=ci[0] if ci else None,
        ci_high_ms=ci[1] if ci else None,
        ci_method=CI_METHOD if ci else CI_METHOD_TOO_FEW,
        load_ms=load_ms,
        first_ms=first_ms,
    )


def summary_stats(
    *,
    n: int,
    median_ms: float,
    mean_ms: float,
    min_ms: float,
    max_ms: float,
    p90_ms: float | None = None,
    load_ms: float | None = None,
    first_ms: float | None = None,
) -> LatencyStats:
    """Statistics taken as reported by a runner that prints only aggregates.

    Nothing is derived that the runner did not report: spread, MAD and the confidence
    interval stay ``None`` (``onnxruntime_perf_test`` gives percentiles but no samples).
    """
    values = _check_ms([median_ms, mean_ms, min_ms, max_ms], "runner summary")
    if n < 1:
        raise MobilebenchError(f"runner summary covers {n} iterations; expected at least 1")
    return LatencyStats(
        n=n,
        median_ms=values[0],
        mean_ms=values[1],
        min_ms=values[2],
        max_ms=values[3],
        p10_ms=None,
        p90_ms=p90_ms,
        std_ms=None,
        cv=None,
        mad_ms=None,
        ci_low_ms=None,
        ci_high_ms=None,
        ci_method=CI_METHOD_SUMMARY,
        load_ms=load_ms,
        first_ms=first_ms,
    )


def ci_is_tight(samples_ms: Sequence[float], target_rel: float) -> bool:
    """Whether both ends of the 95 % CI of the median lie within ``±target_rel`` of it.

    The adaptive-iteration stopping rule, the same as the native runner's
    ``--target-rel-ci``: ``max(median - ci_low, ci_high - median) <= target_rel * median``.
    False while no interval exists (fewer than 6 samples).
    """
    if not 0 < target_rel < 1:
        raise MobilebenchError(f"target relative CI must be between 0 and 1, got {target_rel}")
    xs = np.sort(np.asarray(samples_ms, dtype=float))
    ci = median_ci(xs)
    if ci is None:
        return False
    med = float(np.median(xs))
    return max(med - ci[0], ci[1] - med) <= target_rel * med


def _number(state: Mapping[str, Any] | None, key: str) -> float | None:
    if not state:
        return None
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def warnings(
    stats: LatencyStats,
    state_before: Mapping[str, Any] | None = None,
    state_after: Mapping[str, Any] | None = None,
) -> list[str]:
    """Reasons not to trust a run, one readable line each (empty list: nothing found).

    ``state_before``/``state_after`` are device-state snapshots taken around the run;
    the keys read are ``freq_khz`` (current frequency of the pinned core) and ``temp_c``
    (the hottest thermal zone, degrees C). Missing keys skip that check.
    """
    out: list[str] = []
    if stats.from_summary:
        out.append(
            f"runner reported a summary only ({stats.n} iterations): no per-iteration samples, no confidence interval"
        )
    elif stats.n < MIN_SAMPLES_FOR_CI:
        out.append(
            f"only {stats.n} timed samples: too few for a confidence interval of the median (need {MIN_SAMPLES_FOR_CI})"
        )
    if stats.cv is not None and stats.cv > MAX_CV:
        out.append(f"noisy: coefficient of variation {stats.cv:.1%} exceeds {MAX_CV:.0%}")
    f0, f1 = _number(state_before, "freq_khz"), _number(state_after, "freq_khz")
    if f0 and f1 is not None and abs(f1 - f0) / f0 > MAX_FREQ_CHANGE:
        out.append(
            f"pinned core frequency changed {f0:.0f} -> {f1:.0f} kHz ({(f1 - f0) / f0:+.1%}): "
            "throttling or governor activity"
        )
    t0, t1 = _number(state_before, "temp_c"), _number(state_after, "temp_c")
    if t0 is not None and t1 is not None and t1 - t0 > MAX_TEMP_RISE_C:
        out.append(f"temperature rose {t0:.1f} -> {t1:.1f} C during the run: thermal throttling likely")
    return out
