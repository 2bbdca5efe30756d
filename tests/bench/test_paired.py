"""The paired (interleaved) comparison statistics, on synthetic data with known ratios.

The simulated machine: ABBA pairs of executions whose log latency is the program's
cost plus slow drift (a wave and a trend), a heavy-tailed jitter (Student t, 3 degrees
of freedom), bursts of a noisy neighbour (Markov on/off, slowing an execution 1.5-3x,
starting and ending mid-pair), and optionally an offset of the candidate per runner
invocation. Every simulation is vectorised over trials with a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from mobilebench.bench.paired import (
    EXIT_CODES,
    RatioEstimate,
    SequentialPlan,
    classify,
    estimate_ratio,
    log_ratio_interval,
    verdict,
)
from mobilebench.bench.stats import median_ci_ranks
from mobilebench.errors import MobilebenchError
from mobilebench.records import VERDICTS


def simulate(
    rng: np.random.Generator,
    trials: int,
    batches: int,
    pairs: int,
    ratio: float,
    *,
    drift: float = 0.1,
    jitter: float = 0.03,
    bursts: bool = True,
    invocation_sd: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline_ms, candidate_ms, batch label per pair), shapes (trials, batches * pairs)."""
    steps = 2 * pairs
    j = np.arange(steps)
    wave = rng.uniform(20, 200, (trials, batches, 1))
    phase = rng.uniform(0, 2 * np.pi, (trials, batches, 1))
    trend = rng.normal(0, drift / steps, (trials, batches, 1))
    log_ms = math.log(10.0) + drift * np.sin(2 * np.pi * j / wave + phase) + trend * j
    log_ms = log_ms + jitter * rng.standard_t(3, (trials, batches, steps))
    if bursts:
        state = rng.random((trials, batches)) < 0.2
        slow = np.zeros((trials, batches, steps))
        for step in range(steps):
            flip = rng.random((trials, batches))
            state = np.where(state, flip > 0.15, flip < 0.04)  # bursts of ~7 executions, ~20 % busy
            slow[..., step] = state * np.log(rng.uniform(1.5, 3.0, (trials, batches)))
        log_ms = log_ms + slow
    # ABBA: pair i runs A first when i is even, B first when odd.
    first = np.arange(pairs) % 2 == 0
    a_at = np.where(first, 2 * np.arange(pairs), 2 * np.arange(pairs) + 1)
    b_at = np.where(first, 2 * np.arange(pairs) + 1, 2 * np.arange(pairs))
    offset = rng.normal(0, invocation_sd, (trials, batches, 1)) if invocation_sd else 0.0
    base = np.exp(log_ms[..., a_at])
    cand = np.exp(log_ms[..., b_at] + math.log(ratio) + offset)
    labels = np.repeat(np.arange(batches), pairs)
    return base.reshape(trials, -1), cand.reshape(trials, -1), labels


def coverage(base: np.ndarray, cand: np.ndarray, labels: np.ndarray, ratio: float, confidence: float = 0.95):
    """Fraction of trials whose interval holds the true ratio, and the median width."""
    k = int(labels.max()) + 1
    got = log_ratio_interval(np.log(cand) - np.log(base), labels, k, confidence)
    truth = math.log(ratio)
    covered = (got.low <= truth) & (got.high >= truth)
    return float(covered.mean()), float(np.median(got.high - got.low))


# --- the estimate ----------------------------------------------------------------------


def test_exact_ratio_and_order_statistics_by_hand():
    base = [10.0, 12.0, 11.0, 10.5, 13.0, 9.0, 10.0, 11.0, 12.0, 10.0]
    factors = [1.00, 1.10, 1.02, 1.04, 0.98, 1.06, 1.03, 1.08, 1.01, 1.05]
    est = estimate_ratio(base, [b * f for b, f in zip(base, factors, strict=True)])
    # Sorted factors: .98 1.00 1.01 1.02 1.03 | 1.04 1.05 1.06 1.08 1.10; median of the logs.
    assert est.ratio == pytest.approx(math.sqrt(1.03 * 1.04))
    assert median_ci_ranks(10) == (2, 9)  # -> the 2nd and 9th smallest factors
    assert (est.ci_low, est.ci_high) == (pytest.approx(1.00), pytest.approx(1.08))
    assert est.within == (est.ci_low, est.ci_high)
    assert est.pairs == 10 and est.batches == 1 and est.between is None
    assert "one batch" in est.method
    assert est.baseline_median_ms == 10.75
    assert est.candidate_median_ms == pytest.approx(np.median(np.array(base) * factors))


def test_a_constant_factor_is_measured_exactly():
    base = np.linspace(8, 12, 40)
    est = estimate_ratio(base, 1.1 * base, batches=np.repeat([7, 9], 20))
    assert est.ratio == est.ci_low == pytest.approx(1.1) and est.ci_high == pytest.approx(1.1)
    assert est.batches == 2 and est.between == (pytest.approx(1.1), pytest.approx(1.1))
    assert verdict(est, 0.02) == "slower"


def test_the_interval_spans_the_within_and_the_between_intervals():
    rng = np.random.default_rng(3)
    base = 10 * np.exp(rng.normal(0, 0.05, 400))
    noise = np.exp(rng.normal(0, 0.05, 400))
    labels = np.repeat(np.arange(4), 100)
    pooled = estimate_ratio(base, base * noise)
    agreeing = estimate_ratio(base, base * noise, batches=labels)
    assert agreeing.within == (pooled.ci_low, pooled.ci_high) and agreeing.ratio == pooled.ratio
    assert agreeing.ci_low == min(agreeing.within[0], agreeing.between[0])
    assert agreeing.ci_high == max(agreeing.within[1], agreeing.between[1])
    # Batches that disagree: the invocation's offset dominates, the between interval wins.
    shifted = base * noise * np.exp(np.repeat([-0.03, 0.03, -0.03, 0.03], 100))
    differing = estimate_ratio(base, shifted, batches=labels)
    medians = np.log([np.median(shifted[labels == b] / base[labels == b]) for b in range(4)])
    half = sps.t.ppf(0.975, 3) * medians.std(ddof=1) / 2
    assert differing.between == (
        pytest.approx(np.exp(medians.mean() - half)),
        pytest.approx(np.exp(medians.mean() + half)),
    )
    assert (differing.ci_low, differing.ci_high) == differing.between
    assert differing.ci_low < differing.within[0] and "4 batch medians" in differing.method


def test_too_few_pairs_have_no_interval_and_no_verdict():
    est = estimate_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    assert est.ratio == 2.0 and est.ci_low is None and est.ci_high is None
    assert verdict(est, 0.02) == "unknown"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(baseline_ms=[1.0, 2.0], candidate_ms=[1.0]), "differ in length"),
        (dict(baseline_ms=[], candidate_ms=[]), "no paired samples"),
        (dict(baseline_ms=[1.0, 0.0], candidate_ms=[1.0, 1.0]), "baseline latencies contain 0.0"),
        (dict(baseline_ms=[1.0, 1.0], candidate_ms=[1.0, float("nan")]), "candidate latencies contain nan"),
        (dict(baseline_ms=[1.0, 1.0], candidate_ms=[1.0, 1.0], batches=[1]), "one label per pair"),
        (dict(baseline_ms=[1.0], candidate_ms=[1.0], confidence=1.0), "confidence"),
    ],
)
def test_bad_input_is_a_one_line_error(kwargs, message):
    with pytest.raises(MobilebenchError, match=message):
        estimate_ratio(**kwargs)


# --- coverage on simulated machines ------------------------------------------------------


@pytest.mark.parametrize(
    "machine",
    [
        dict(drift=0.0, bursts=False),  # heavy-tailed jitter only
        dict(drift=0.15),  # drift, jitter and bursts
        dict(drift=0.05, jitter=0.08),  # a jittery machine with bursts
    ],
    ids=["jitter", "drift+bursts", "noisy"],
)
@pytest.mark.parametrize("layout", [(1, 200), (4, 50)], ids=["1x200", "4x50"])
def test_interval_covers_the_true_ratio_95_percent(machine, layout):
    rng = np.random.default_rng(11)
    ratio = 1.05
    base, cand, labels = simulate(rng, 3000, *layout, ratio, **machine)
    rate, width = coverage(base, cand, labels, ratio)
    # Order statistics are conservative by construction (n = 200: 95.5 % nominal); with
    # few batches the between interval adds some (4 batches: about 99 %).
    assert 0.94 <= rate <= (0.985 if layout[0] == 1 else 0.995), rate
    assert width < 0.2


@pytest.mark.parametrize("batches", [4, 8])
@pytest.mark.parametrize("size", [0.5, 1.0, 2.0])
def test_interval_covers_despite_an_offset_per_invocation(batches, size):
    rng = np.random.default_rng(5)
    base, cand, labels = simulate(rng, 3000, batches, 50, 1.0)
    _, width = coverage(base, cand, labels, 1.0)
    # An offset per invocation of `size` times a batch median's own standard error.
    sd = size * width / (2 * 1.96) * math.sqrt(batches)
    base, cand, labels = simulate(rng, 3000, batches, 50, 1.0, invocation_sd=sd)
    rate, _ = coverage(base, cand, labels, 1.0)
    # The pairs alone would take the offsets for noise that averages out.
    alone = log_ratio_interval(np.log(cand) - np.log(base), np.zeros_like(labels), 1, 0.95)
    naive = float(((alone.low <= 0) & (alone.high >= 0)).mean())
    assert rate >= 0.945 and rate > naive + 0.02 * size, (rate, naive)


# --- the verdict ---------------------------------------------------------------------------


def _estimate(ratio: float, low: float | None, high: float | None) -> RatioEstimate:
    return RatioEstimate(ratio, low, high, 100, 1, 0.95, None, None, 10.0, 10.0 * ratio)


@pytest.mark.parametrize(
    "ratio, low, high, expected",
    [
        (1.0, 0.98, 1.02, "same"),  # the whole interval inside 1 +- 2 %, ends included
        (1.0, 0.98, 1.0201, "unknown"),
        (0.999, 0.9799, 1.01, "unknown"),
        (1.021, 1.0001, 1.04, "slower"),
        (1.021, 1.0, 1.04, "unknown"),  # the interval touches 1
        (1.02, 1.001, 1.04, "unknown"),  # the estimate is not past the threshold
        (1.015, 1.005, 1.019, "same"),  # slower than 1, but by less than the threshold
        (1.015, 1.005, 1.03, "unknown"),
        (0.979, 0.96, 0.9999, "faster"),
        (0.979, 0.96, 1.0, "unknown"),
        (0.98, 0.96, 0.99, "unknown"),
        (1.3, None, None, "unknown"),
    ],
)
def test_verdict_at_the_boundaries(ratio, low, high, expected):
    assert verdict(_estimate(ratio, low, high), 0.02) == expected


def test_verdicts_and_exit_codes():
    assert set(EXIT_CODES) == set(VERDICTS)
    assert (EXIT_CODES["same"], EXIT_CODES["faster"], EXIT_CODES["slower"], EXIT_CODES["unknown"]) == (0, 0, 1, 3)
    with pytest.raises(MobilebenchError, match="threshold"):
        verdict(_estimate(1.0, 0.99, 1.01), 0)
    with pytest.raises(MobilebenchError, match="threshold"):
        classify(np.ones(2), np.ones(2), np.ones(2), 1.5)


@pytest.mark.parametrize("ratio, expected", [(1.0, "same"), (1.05, "slower"), (0.95, "faster")])
def test_clear_cases_through_the_estimate(ratio, expected):
    rng = np.random.default_rng(2)
    base, cand, labels = simulate(rng, 1, 4, 100, ratio, drift=0.05, jitter=0.01)
    assert verdict(estimate_ratio(base[0], cand[0], batches=labels), 0.02) == expected
    few = estimate_ratio(base[0, :8], cand[0, :8])  # 8 pairs: an interval, too wide to decide
    assert verdict(few, 0.02) == "unknown"


# --- sequential measurement ----------------------------------------------------------------


def run_plan(plan: SequentialPlan, base: np.ndarray, cand: np.ndarray) -> list[str]:
    """Each trial through plan.decide, look after look, as the compare command does."""
    per_look = plan.batches_per_look * plan.pairs_per_batch
    labels = np.repeat(np.arange(plan.max_looks * plan.batches_per_look), plan.pairs_per_batch)
    answers = []
    for b, c in zip(base, cand, strict=True):
        for look in range(1, plan.max_looks + 1):
            upto = look * per_look
            decision = plan.decide(b[:upto], c[:upto], batches=labels[:upto], look=look)
            if decision.done:
                break
        answers.append(decision.verdict)
    return answers


def run_plan_on_all_trials(plan: SequentialPlan, base: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """:func:`run_plan` for many trials at once, through the vectorised core of decide."""
    per_look = plan.batches_per_look * plan.pairs_per_batch
    labels = np.repeat(np.arange(plan.max_looks * plan.batches_per_look), plan.pairs_per_batch)
    d = np.log(cand) - np.log(base)
    answers = np.full(d.shape[0], "unknown", dtype=object)
    open_ = np.ones(d.shape[0], dtype=bool)
    for look in range(1, plan.max_looks + 1):
        upto = look * per_look
        got = log_ratio_interval(d[:, :upto], labels[:upto], look * plan.batches_per_look, plan.look_confidence)
        now = classify(np.exp(got.center), np.exp(got.low), np.exp(got.high), plan.threshold)
        decided = open_ & (now != "unknown")
        answers[decided] = now[decided]
        open_ &= ~decided
    return answers


def test_the_vectorised_plan_agrees_with_decide():
    rng = np.random.default_rng(12)
    plan = SequentialPlan(threshold=0.01, max_looks=3, batches_per_look=2, pairs_per_batch=30)
    base, cand, _ = simulate(rng, 40, 6, 30, 1.01, jitter=0.05)
    assert run_plan(plan, base, cand) == list(run_plan_on_all_trials(plan, base, cand))


def test_plan_checks_and_confidence():
    plan = SequentialPlan(threshold=0.02, alpha=0.05, max_looks=5)
    assert plan.look_confidence == pytest.approx(0.99)
    assert plan.max_pairs == 5 * plan.batches_per_look * plan.pairs_per_batch
    with pytest.raises(MobilebenchError, match="look must be 1..5"):
        plan.decide([1.0] * 10, [1.0] * 10, batches=None, look=6)
    for bad in (dict(threshold=0), dict(alpha=1.0), dict(max_looks=0), dict(pairs_per_batch=0)):
        with pytest.raises(MobilebenchError):
            SequentialPlan(**bad)


def test_plan_stops_at_a_verdict_or_the_last_look():
    plan = SequentialPlan(max_looks=3, batches_per_look=4, pairs_per_batch=30)
    rng = np.random.default_rng(4)
    base, cand, labels = simulate(rng, 1, 12, 30, 1.2, jitter=0.01)
    first = plan.decide(base[0, :120], cand[0, :120], batches=labels[:120], look=1)
    assert (first.verdict, first.done, first.exit_code, first.look) == ("slower", True, 1, 1)
    base, cand, labels = simulate(rng, 1, 12, 30, 1.0, jitter=0.3)
    middle = plan.decide(base[0, :240], cand[0, :240], batches=labels[:240], look=2)
    last = plan.decide(base[0], cand[0], batches=labels, look=3)
    assert (middle.verdict, middle.done) == ("unknown", False)
    assert (last.verdict, last.done, last.exit_code) == ("unknown", True, 3)
    assert last.estimate.confidence == plan.look_confidence


def test_sequential_false_verdict_rate_stays_within_alpha():
    # A tiny threshold makes any interval that excludes 1 a verdict: the hardest case for
    # the error rate. Looking eight times at 95 % each inflates it; the split keeps it.
    rng = np.random.default_rng(8)
    looks, batches, pairs = 8, 1, 50
    base, cand, _ = simulate(rng, 2000, looks * batches, pairs, 1.0, jitter=0.05)
    kw = dict(threshold=0.001, max_looks=looks, batches_per_look=batches, pairs_per_batch=pairs)
    split = run_plan_on_all_trials(SequentialPlan(alpha=0.05, **kw), base, cand)
    naive = run_plan_on_all_trials(SequentialPlan(alpha=0.4, **kw), base, cand)  # 95 % at every look
    false_split = np.isin(split, ["slower", "faster"]).mean()
    false_naive = np.isin(naive, ["slower", "faster"]).mean()
    assert false_split <= 0.05 and false_naive > 0.08, (false_split, false_naive)


def test_sequential_false_verdict_rate_stays_within_alpha_when_invocations_differ():
    # Offsets per invocation about twice a batch median's own noise: the pairs of a batch
    # agree on a ratio that is off; only the spread between batches shows it.
    rng = np.random.default_rng(10)
    plan = SequentialPlan(threshold=0.001, max_looks=4, batches_per_look=4, pairs_per_batch=30)
    base, cand, _ = simulate(rng, 2000, 16, 30, 1.0, jitter=0.05, invocation_sd=0.02)
    answers = run_plan_on_all_trials(plan, base, cand)
    assert np.isin(answers, ["slower", "faster"]).mean() <= 0.05


def test_sequential_plan_on_a_aa_and_a_real_slowdown():
    rng = np.random.default_rng(9)
    plan = SequentialPlan(threshold=0.02, max_looks=4, batches_per_look=3, pairs_per_batch=60)
    base, cand, _ = simulate(rng, 200, 12, 60, 1.0, jitter=0.03)
    aa = run_plan(plan, base, cand)
    assert aa.count("same") >= 190 and aa.count("slower") + aa.count("faster") <= 10
    # 3 % slower: beyond the threshold, so "same" would be a false verdict.
    base, cand, _ = simulate(rng, 200, 12, 60, 1.03, jitter=0.03)
    slow = run_plan(plan, base, cand)
    assert slow.count("same") + slow.count("faster") <= 10 and slow.count("slower") >= 190
