"""Statistics of an interleaved A/B comparison: the latency ratio, its interval, a verdict.

Data: pairs ``(baseline_ms[i], candidate_ms[i])``, the two programs executed back to
back in one runner process, in ABBA order (A B, B A, A B, ...), possibly from several
runner invocations ("batches"). Everything is computed on the per-pair log-ratio
``d[i] = ln(candidate_ms[i] / baseline_ms[i])``: drift slower than a pair cancels in it,
and a burst of a noisy neighbour that slows both halves of a pair cancels too.

Estimate
    ``ratio = exp(median(d))``, CANDIDATE / BASELINE (1.05 = the candidate takes 5 %
    longer). The median ignores the pairs that a burst hit in one half only.

Interval (the unit of replication, and what it covers)
    *Within*: the order-statistics interval of the median of all pairs (the binomial
    ranks of :func:`mobilebench.bench.stats.median_ci_ranks`), which treats the pairs as
    independent draws around one ratio. Within one runner process that holds well
    enough: ABBA order turns the order effect and linear drift into alternating signs,
    and the lag-1 autocorrelation of ``d`` measured on this machine's native runner is
    within +-0.17 (``benchmarks/bench_compare_power.py``).
    *Between*: but the pairs of one process share its memory placement and its share of
    the machine, so the ratio itself moves from one invocation to the next: measured
    here, six invocations of 300 pairs gave batch ratios spread by 1.7-2.4 % (sd), far
    more than the within interval (+-0.7 %) allows for. With two or more batches the
    Student t interval of the mean of the batch medians (``k - 1`` degrees of freedom;
    the invocation is the replicate) captures that.
    The reported interval spans both (the lower low end, the higher high end). It holds
    the true ratio whenever either does, so its coverage is at least the larger of
    theirs whatever the invocations do: 95-99 % in simulation with heavy tails, drift,
    contamination and offsets per invocation up to twice a batch median's own noise
    (``tests/bench/test_paired.py``). A random-effects estimate of the between-batch
    variance (DerSimonian-Laird) was narrower with few batches but let the sequential
    false-verdict rate reach 6 % at such offsets; the t interval costs width only while
    there are few batches, which :class:`SequentialPlan` avoids by taking several short
    invocations per look. The true ratio is the mean over invocations of their ratio.

Verdict (Chromium Pinpoint's three answers, with a direction)
    ``same``: the whole interval inside ``[1 - threshold, 1 + threshold]``;
    ``slower``/``faster``: the interval entirely above/below 1 *and* the estimate beyond
    ``1 +/- threshold``; otherwise ``unknown`` (measure more).

Sequential measurement (:class:`SequentialPlan`)
    Measure a look's worth of batches, decide, and on ``unknown`` measure another, up to
    ``max_looks`` looks. Each look's interval is at confidence ``1 - alpha / max_looks``
    (Bonferroni). A false verdict (``slower``/``faster`` when the truth is 1, ``same``
    when it is beyond the threshold, the wrong direction) needs the interval to miss
    the truth at the look that decided, so by the union bound its probability over the
    whole sequence is at most ``alpha`` whatever the dependence between looks (they
    share data, so the real rate is lower: 1.8 % against 12 % for eight uncorrected
    looks at 95 %, in simulation). The split is equal: a clear slowdown is decided at the
    first look and ``same`` needs the most data, so an early look deserves no less
    than a late one (a front-loaded spending such as O'Brien-Fleming's would delay the
    easy verdicts). A fixed number of looks keeps the bound valid when the time runs
    out early. The interval a decision reports is the one it used, at the look's
    confidence (98.75 % with the defaults), not at 95 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from mobilebench.bench.stats import median_ci_ranks
from mobilebench.errors import MobilebenchError
from mobilebench.records import VERDICTS

DEFAULT_THRESHOLD = 0.02
DEFAULT_ALPHA = 0.05
#: ``compare``'s exit status per verdict.
EXIT_CODES = {"same": 0, "faster": 0, "slower": 1, "unknown": 3}
assert set(EXIT_CODES) == set(VERDICTS)


@dataclass(frozen=True)
class RatioEstimate:
    """CANDIDATE / BASELINE latency ratio with its interval (see the module docstring).

    ``ci_low``/``ci_high`` are None when there are too few pairs for an interval at
    ``confidence`` (six at 95 %). ``within`` and ``between`` are the two intervals the
    reported one spans (``between`` is None with fewer than two batches).
    """

    ratio: float
    ci_low: float | None
    ci_high: float | None
    pairs: int
    batches: int
    confidence: float
    within: tuple[float, float] | None
    between: tuple[float, float] | None
    baseline_median_ms: float
    candidate_median_ms: float

    @property
    def method(self) -> str:
        text = f"exp(median of per-pair log-ratios); {self.confidence:.2%} interval: order statistics of {self.pairs} pairs"
        if self.between is not None:
            text += f" and the t interval of {self.batches} batch medians, whichever reaches further"
        else:
            text += " (one batch: between-invocation variation not assessed)"
        return text


def _batch_index(batches: Sequence[object] | np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Batch labels -> integer index 0..k-1 per pair, and k."""
    if batches is None:
        return np.zeros(n, dtype=np.intp), 1
    labels = np.asarray(batches)
    if labels.shape != (n,):
        raise MobilebenchError(f"batches has {labels.size} labels for {n} pairs; expected one label per pair")
    _, index = np.unique(labels, return_inverse=True)
    return index.reshape(n), int(index.max()) + 1


@dataclass(frozen=True)
class LogInterval:
    """:func:`log_ratio_interval`'s answer in log space, arrays over the leading axes of ``d``.

    NaN ends where no interval exists; the ``between`` ends are None with one batch.
    """

    center: np.ndarray  # median of d
    low: np.ndarray
    high: np.ndarray
    within_low: np.ndarray
    within_high: np.ndarray
    between_low: np.ndarray | None
    between_high: np.ndarray | None


def log_ratio_interval(d: np.ndarray, batch_index: np.ndarray, batches: int, confidence: float) -> LogInterval:
    """The median of the log-ratios ``d`` and its interval, along the last axis.

    Vectorised over leading axes: simulations pass many trials at once, sharing one
    ``batch_index`` (0..batches-1 per pair).
    """
    n = d.shape[-1]
    center = np.median(d, axis=-1)
    ranks = median_ci_ranks(n, confidence)
    if ranks is None:
        nan = np.full_like(center, np.nan)
        return LogInterval(center, nan, nan, nan, nan, None, None)
    ordered = np.sort(d, axis=-1)
    low, high = ordered[..., ranks[0] - 1], ordered[..., ranks[1] - 1]
    if batches < 2:
        return LogInterval(center, low, high, low, high, None, None)
    medians = np.stack([np.median(d[..., batch_index == b], axis=-1) for b in range(batches)], axis=-1)
    mean = medians.mean(axis=-1)
    half = sps.t.ppf(0.5 + confidence / 2, batches - 1) * medians.std(axis=-1, ddof=1) / np.sqrt(batches)
    b_low, b_high = mean - half, mean + half
    return LogInterval(center, np.minimum(low, b_low), np.maximum(high, b_high), low, high, b_low, b_high)


def _check_pairs(baseline_ms: Sequence[float], candidate_ms: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    base = np.asarray(baseline_ms, dtype=float).ravel()
    cand = np.asarray(candidate_ms, dtype=float).ravel()
    if base.size != cand.size:
        raise MobilebenchError(
            f"paired latencies differ in length: {base.size} baseline vs {cand.size} candidate samples"
        )
    if not base.size:
        raise MobilebenchError("no paired samples to compare")
    for what, xs in (("baseline", base), ("candidate", cand)):
        bad = xs[~np.isfinite(xs) | (xs <= 0)]
        if bad.size:
            raise MobilebenchError(f"{what} latencies contain {float(bad[0])!r}; each must be finite and > 0")
    return base, cand


def estimate_ratio(
    baseline_ms: Sequence[float],
    candidate_ms: Sequence[float],
    *,
    batches: Sequence[object] | None = None,
    confidence: float = 0.95,
) -> RatioEstimate:
    """The CANDIDATE / BASELINE ratio of paired latencies with its interval.

    ``batches`` labels each pair with the runner invocation it came from (any hashable
    values, e.g. run ids); None means one invocation.
    """
    if not 0 < confidence < 1:
        raise MobilebenchError(f"confidence must be between 0 and 1, got {confidence}")
    base, cand = _check_pairs(baseline_ms, candidate_ms)
    index, k = _batch_index(batches, base.size)
    got = log_ratio_interval(np.log(cand) - np.log(base), index, k, confidence)
    has_ci = bool(np.isfinite(got.low))
    return RatioEstimate(
        ratio=float(np.exp(got.center)),
        ci_low=float(np.exp(got.low)) if has_ci else None,
        ci_high=float(np.exp(got.high)) if has_ci else None,
        pairs=int(base.size),
        batches=k,
        confidence=confidence,
        within=(float(np.exp(got.within_low)), float(np.exp(got.within_high))) if has_ci else None,
        between=(float(np.exp(got.between_low)), float(np.exp(got.between_high)))
        if has_ci and got.between_low is not None
        else None,
        baseline_median_ms=float(np.median(base)),
        candidate_median_ms=float(np.median(cand)),
    )


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold < 1:
        raise MobilebenchError(f"threshold must be a fraction between 0 and 1 (0.02 = 2 %), got {threshold}")


def classify(ratio: np.ndarray, low: np.ndarray, high: np.ndarray, threshold: float) -> np.ndarray:
    """Vectorised :func:`verdict` on ratios and interval ends (NaN ends: ``unknown``)."""
    _check_threshold(threshold)
    same = (low >= 1 - threshold) & (high <= 1 + threshold)
    slower = (low > 1) & (ratio > 1 + threshold)
    faster = (high < 1) & (ratio < 1 - threshold)
    return np.select([same, slower, faster], ["same", "slower", "faster"], "unknown")


def verdict(estimate: RatioEstimate, threshold: float = DEFAULT_THRESHOLD) -> str:
    """``same``, ``slower``, ``faster`` or ``unknown`` (see the module docstring)."""
    if estimate.ci_low is None or estimate.ci_high is None:
        _check_threshold(threshold)
        return "unknown"
    return str(classify(np.array(estimate.ratio), np.array(estimate.ci_low), np.array(estimate.ci_high), threshold))


@dataclass(frozen=True)
class Decision:
    """What one look concluded. ``done``: stop measuring (a verdict, or the last look)."""

    verdict: str
    estimate: RatioEstimate
    look: int
    done: bool

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


@dataclass(frozen=True)
class SequentialPlan:
    """How much to measure before each look, and how many looks at most.

    A look is ``batches_per_look`` runner invocations of ``pairs_per_batch`` ABBA pairs
    each; after look ``max_looks`` an undecided comparison ends ``unknown``. Short,
    numerous invocations, because the ratio moves between invocations more than within
    one (see the module docstring): the invocation is what the between interval counts,
    and its t quantile falls fast with their number (eight at the first look). The
    defaults (at most 960 pairs in 32 invocations) were chosen in simulation of this
    machine's measured noise (per pair 12.5 %, per invocation 0-2 %, 50 ms a pair and
    0.65 s per invocation, a 60 s budget): the A/A false-verdict rate stays under 2 %
    and a 3.8 % slowdown is called slower at the first look. A faster model can take
    more pairs per batch. Batches may differ in size, but ``max_looks`` must be fixed
    before the first look.
    """

    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    max_looks: int = 4
    batches_per_look: int = 8
    pairs_per_batch: int = 30

    def __post_init__(self) -> None:
        _check_threshold(self.threshold)
        if not 0 < self.alpha < 1:
            raise MobilebenchError(f"alpha must be between 0 and 1, got {self.alpha}")
        for name in ("max_looks", "batches_per_look", "pairs_per_batch"):
            if getattr(self, name) < 1:
                raise MobilebenchError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def look_confidence(self) -> float:
        """Confidence of each look's interval: ``1 - alpha / max_looks``."""
        return 1 - self.alpha / self.max_looks

    @property
    def max_pairs(self) -> int:
        return self.max_looks * self.batches_per_look * self.pairs_per_batch

    def decide(
        self,
        baseline_ms: Sequence[float],
        candidate_ms: Sequence[float],
        *,
        batches: Sequence[object] | None,
        look: int,
    ) -> Decision:
        """The decision at look ``look`` (1-based) on all pairs measured so far."""
        if not 1 <= look <= self.max_looks:
            raise MobilebenchError(f"look must be 1..{self.max_looks}, got {look}")
        estimate = estimate_ratio(baseline_ms, candidate_ms, batches=batches, confidence=self.look_confidence)
        answer = verdict(estimate, self.threshold)
        return Decision(answer, estimate, look, done=answer != "unknown" or look == self.max_looks)
