"""Comparisons: is CANDIDATE slower than BASELINE on this device, by more than a threshold?

Both models are measured in one session on one device, interleaved, so that whatever
the device or a neighbour does to its speed hits both alike; the answer comes from the
paired data (:mod:`mobilebench.bench.paired`), never from two runs of different
moments. Two ways of interleaving (``mode``):

``interleaved`` (the default where it applies: two ExecuTorch programs and the native
runner)
    Both programs are loaded by ONE runner process and executed alternately in ABBA
    pairs (``mobilebench_runner --model A --model B --interleave``). A *batch* is one
    runner invocation of ``pairs_per_batch`` timed pairs after a few warm-up pairs.
    Protects against drift on every time scale longer than a pair (frequency steps,
    heat, a neighbour's bursts) and, through the ABBA order, against the order within a
    pair. Both programs being resident at once costs each the same cache and memory
    pressure: it cancels in the ratio, not in the absolute latencies. Several batches
    per look let the statistics see the variation between runner processes too.
``alternating``
    Whole runs alternate, A B B A ... (one runner process per run, each its own warm-up),
    for what cannot share a process: ONNX, the stock runners, a different runtime or dtype
    per side. The unit is the run: each run's median is one value, one A run and the B
    run next to it form a pair. It protects against slow drift only (over minutes, not
    within a run), and needs many more pairs for the same confidence: on the shared
    2-core machine the A/A ratio of whole runs wandered 0.96-1.01 against
    0.996-1.010 interleaved (``../shared/reference/measurement.md``).

The measurement is sequential (:class:`~mobilebench.bench.paired.SequentialPlan`): after
each look's batches the verdict is computed; ``unknown`` measures another look, until a
verdict, the plan's last look, or ``max_seconds``. Every batch stores two runs (one per
side, their samples carrying the pair index, the comparison's id), and the comparison
row its verdict, so a comparison can be re-analysed later from the database.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from mobilebench.bench.hooks import ProgressHooks
from mobilebench.bench.paired import DEFAULT_ALPHA, DEFAULT_THRESHOLD, Decision, SequentialPlan
from mobilebench.bench.runners import InterleavedRequest
from mobilebench.bench.session import (
    Exporter,
    ProfileConfig,
    ProfileSession,
    interruption,
)
from mobilebench.device import Device, connect
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import Artifact, ExportOptions
from mobilebench.records import ComparisonRecord, Sample
from mobilebench.store import ResultsStore
from mobilebench.zoo.resolve import ArtifactFile, ResolvedModel

Mode = Literal["interleaved", "alternating"]
MODES = ("interleaved", "alternating")
SIDES = ("baseline", "candidate")


@dataclass(frozen=True)
class CompareConfig:
    """How to compare. ``profile`` says where and how one side is measured (device,
    runtime, dtype, cool-down, timeouts); ``candidate_runtime``/``candidate_dtype``
    override it for the candidate (fp32 vs int8 is one comparison).

    ``threshold``: the relative difference that matters (0.02 = 2 %). ``max_seconds``:
    stop measuring (``unknown``) when the next look would not fit. ``mode`` None picks
    ``interleaved`` where it applies. The plan: ``warmup`` warm-up pairs per batch
    (alternating: warm-up iterations per run), ``pairs_per_batch`` timed pairs per
    batch (alternating: timed iterations per run), ``batches_per_look`` batches per
    look, at most ``max_looks`` looks. ``allow_input_mismatch``: compare models of
    different input shapes (otherwise an error).
    """

    profile: ProfileConfig
    threshold: float = DEFAULT_THRESHOLD
    max_seconds: float = 60.0
    mode: Mode | None = None
    alpha: float = DEFAULT_ALPHA
    warmup: int = 5
    pairs_per_batch: int = SequentialPlan.pairs_per_batch
    batches_per_look: int = SequentialPlan.batches_per_look
    max_looks: int = SequentialPlan.max_looks
    candidate_runtime: str | None = None
    candidate_dtype: str | None = None
    allow_input_mismatch: bool = False

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise UsageError(f"unknown comparison mode {self.mode!r}; use {' or '.join(MODES)}")
        if not math.isfinite(self.max_seconds) or self.max_seconds <= 0:
            raise UsageError(f"max seconds must be positive, got {self.max_seconds}")
        if self.profile.repeat != 1 or self.profile.target_rel_ci is not None:
            raise UsageError("a comparison decides how much to measure itself: no --repeat or --target-rel-ci")
        self.plan()  # validates threshold, alpha and the counts

    def plan(self) -> SequentialPlan:
        return SequentialPlan(
            threshold=self.threshold,
            alpha=self.alpha,
            max_looks=self.max_looks,
            batches_per_look=self.batches_per_look,
            pairs_per_batch=self.pairs_per_batch,
        )

    def side(self, which: str) -> ProfileConfig:
        """The profile configuration of one side (one run of the alternating mode)."""
        config = replace(self.profile, warmup=self.warmup, iterations=self.pairs_per_batch)
        if which == "baseline":
            return config
        return replace(
            config, runtime=self.candidate_runtime or config.runtime, dtype=self.candidate_dtype or config.dtype
        )


@dataclass
class ComparisonOutcome:
    """A finished comparison: its stored row, the last decision, the runs it stored."""

    record: ComparisonRecord
    decision: Decision
    run_ids: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.decision.exit_code


class ComparisonFailed(MobilebenchError):
    """A side failed mid-comparison; what was measured before is stored."""


class CompareSession:
    """Compares two models on one device and stores everything (see the module docstring).

    Each side is a :class:`ProfileSession` of its own configuration; the two share the
    store, the progress display and the exporter.
    """

    def __init__(
        self,
        config: CompareConfig,
        store: ResultsStore,
        *,
        hooks: ProgressHooks | None = None,
        export: Exporter | None = None,
    ) -> None:
        self.hooks = hooks or ProgressHooks()  # one display for both sides
        self.config = config
        self.store = store
        self.sides = {which: ProfileSession(config.side(which), store, hooks=self.hooks, export=export) for which in SIDES}
        self.mode: Mode = config.mode or ("interleaved" if self._can_interleave() else "alternating")
        if self.mode == "interleaved" and not self._can_interleave():
            raise UsageError(
                "--mode interleaved needs two ExecuTorch programs of the same dtype run by mobilebench_runner; "
                "use --mode alternating"
            )
        #: The run ids stored so far, in order; still valid when :meth:`run` raised.
        self.run_ids: list[int] = []

    def _can_interleave(self) -> bool:
        base, cand = self.sides["baseline"], self.sides["candidate"]
        return (
            base.config.runtime == cand.config.runtime == "executorch"
            and base.runner.adapter.name == cand.runner.adapter.name == "mobilebench_runner"
        )

    # -- the whole job ------------------------------------------------------------------

    def run(self, baseline: ResolvedModel, candidate: ResolvedModel) -> ComparisonOutcome:
        """Measure until a verdict (or the plan's end, or the time limit), store, return."""
        self._check_runtimes(baseline, candidate)
        artifacts = {which: self._export(which, model) for which, model in zip(SIDES, (baseline, candidate))}
        self._check_comparable(baseline, candidate, artifacts)
        base = self.sides["baseline"]
        plan = self.config.plan()
        comparison_id = self.store.start_comparison(
            baseline=baseline.name,
            candidate=candidate.name,
            device_profile=base.profile.name,
            mode=self.mode,
            threshold=self.config.threshold,
            extra={
                "baseline_artifact": artifacts["baseline"].sha256,
                "candidate_artifact": artifacts["candidate"].sha256,
                "plan": {
                    "alpha": plan.alpha,
                    "max_looks": plan.max_looks,
                    "batches_per_look": plan.batches_per_look,
                    "pairs_per_batch": plan.pairs_per_batch,
                    "warmup": self.config.warmup,
                },
            },
        )
        started = time.monotonic()
        pairs = _Pairs()
        try:
            self.hooks.stage(f"connecting to {base.profile.name} ({base.profile.endpoint})")
            with connect(base.profile, timeout_s=base.config.connect_timeout_s) as device:
                decision = self._measure(device, plan, pairs, (baseline, candidate), artifacts, comparison_id, started)
        except MobilebenchError as exc:
            self._fail(comparison_id, str(exc))
            raise ComparisonFailed(
                f"comparison {comparison_id} stored as failed after {len(pairs)} pairs: {exc}", exit_code=exc.exit_code
            ) from None
        except BaseException as exc:
            self._fail(comparison_id, interruption(exc))
            raise
        estimate = decision.estimate
        self.store.complete_comparison(
            comparison_id,
            verdict=decision.verdict,
            ratio=estimate.ratio,
            ci_low=estimate.ci_low,
            ci_high=estimate.ci_high,
            pairs=estimate.pairs,
            seconds=time.monotonic() - started,
            extra={
                "confidence": estimate.confidence,
                "method": estimate.method,
                "looks": decision.look,
                "batches": estimate.batches,
                "baseline_median_ms": estimate.baseline_median_ms,
                "candidate_median_ms": estimate.candidate_median_ms,
                "runs": list(self.run_ids),
            },
        )
        record = self.store.get_comparison(comparison_id)
        assert record is not None
        return ComparisonOutcome(record=record, decision=decision, run_ids=list(self.run_ids))

    def _export(self, which: str, model: ResolvedModel) -> Artifact:
        session = self.sides[which]
        options = ExportOptions(runtime=session.config.runtime, dtype=session.config.dtype)
        label = f"{model.name} ({options.runtime} {options.dtype})"
        self.hooks.stage(f"exporting {which} {label}")
        with self.hooks.exporting(label) as export_hooks:
            return session._export(model, options, export_hooks)

    def _check_runtimes(self, baseline: ResolvedModel, candidate: ResolvedModel) -> None:
        """A ready artifact fixes its runtime: the side's must agree, said on the command line."""
        for which, model, flag in (("baseline", baseline, "--runtime"), ("candidate", candidate, "--candidate-runtime")):
            fixed = model.runtime if isinstance(model, ArtifactFile) else None
            asked = self.sides[which].config.runtime
            if fixed is not None and fixed != asked:
                raise UsageError(
                    f"{model.name} is a ready {fixed} artifact but the {which} would run {asked}: "
                    f"say {flag} {fixed} to compare across runtimes"
                )

    def _check_comparable(
        self, baseline: ResolvedModel, candidate: ResolvedModel, artifacts: dict[str, Artifact]
    ) -> None:
        a, b = artifacts["baseline"], artifacts["candidate"]
        if a.input_shape != b.input_shape and not self.config.allow_input_mismatch:
            raise UsageError(
                f"{baseline.name} takes input {'x'.join(map(str, a.input_shape))} and {candidate.name} "
                f"{'x'.join(map(str, b.input_shape))}: different work per inference; pass --allow-input-mismatch "
                "to compare them anyway"
            )

    def _fail(self, comparison_id: int, error: str) -> None:
        try:
            self.store.fail_comparison(comparison_id, error)
        except MobilebenchError:
            pass  # the original error matters more; a stale running row is aborted later

    # -- measuring ----------------------------------------------------------------------

    def _measure(
        self,
        device: Device,
        plan: SequentialPlan,
        pairs: _Pairs,
        models: tuple[ResolvedModel, ResolvedModel],
        artifacts: dict[str, Artifact],
        comparison_id: int,
        started: float,
    ) -> Decision:
        measure_batch = self._interleaved_batch if self.mode == "interleaved" else self._alternating_batch
        look_seconds = 0.0
        for look in range(1, plan.max_looks + 1):
            look_started = time.monotonic()
            for _ in range(plan.batches_per_look):
                measure_batch(device, pairs, models, artifacts, comparison_id)
            decision = plan.decide(pairs.baseline, pairs.candidate, batches=pairs.batches or None, look=look)
            look_seconds = max(look_seconds, time.monotonic() - look_started)
            self.hooks.stage(
                f"look {look}/{plan.max_looks}: ratio {decision.estimate.ratio:.3f}, {decision.verdict} "
                f"({len(pairs)} pairs)"
            )
            out_of_time = time.monotonic() - started + look_seconds > self.config.max_seconds
            if decision.done or out_of_time:
                return decision
        raise AssertionError("the plan's last look is always done")

    def _interleaved_batch(
        self,
        device: Device,
        pairs: _Pairs,
        models: tuple[ResolvedModel, ResolvedModel],
        artifacts: dict[str, Artifact],
        comparison_id: int,
    ) -> None:
        """One runner process, both programs, ``pairs_per_batch`` timed ABBA pairs; two runs stored."""
        session = self.sides["baseline"]
        metas = [session.run_meta(model, artifacts[which], comparison_id=comparison_id) for which, model in zip(SIDES, models)]
        run_ids = [self.store.start_run(meta) for meta in metas]
        self.run_ids += run_ids
        try:
            before = session.read_state(device)
            metas = [session._with_state(meta, before, None) for meta in metas]
            before = session.cool_down(device, before)
            ledger = session.ledger(before)
            remote = [session.push_artifact(device, ledger, artifacts[which]) for which in SIDES]
            binary = session.push_runner(device, ledger)
            request = InterleavedRequest(
                model_paths=(remote[0], remote[1]), warmup=self.config.warmup, pairs=self.config.pairs_per_batch
            )
            adapter = session.runner.adapter
            argv = session.pinned(adapter.interleaved_argv(binary, request))
            outputs, before, after = session.run_runner(
                device,
                argv,
                before,
                total=2 * (request.warmup + request.pairs),
                parse=lambda out: adapter.parse_interleaved(out, request=request),
            )
            offset = pairs.next_pair
            for run_id, meta, output in zip(run_ids, metas, outputs):
                samples = [replace(s, pair=offset + s.pair) for s in output.samples]
                meta, _notes, stats = session.finish_meta(meta, output, before, after)
                self.store.complete_run(run_id, meta, stats, samples)
            pairs.add(run_ids[0], outputs[0].samples, outputs[1].samples, offset)
        except BaseException as exc:
            error = str(exc) if isinstance(exc, MobilebenchError) else interruption(exc)
            for run_id, meta in zip(run_ids, metas):
                session._fail(run_id, error, meta)
            raise

    def _alternating_batch(
        self,
        device: Device,
        pairs: _Pairs,
        models: tuple[ResolvedModel, ResolvedModel],
        artifacts: dict[str, Artifact],
        comparison_id: int,
    ) -> None:
        """One pair of whole runs, A B on even pairs and B A on odd ones; each run's
        median is its value in the pair."""
        pair = pairs.next_pair
        order = SIDES if pair % 2 == 0 else SIDES[::-1]
        medians: dict[str, float] = {}
        for which in order:
            model = models[SIDES.index(which)]
            outcome = self.sides[which].profile_one(device, model, artifacts[which], comparison_id=comparison_id, pair=pair)
            self.run_ids.append(outcome.run_id)
            assert outcome.record.stats is not None
            medians[which] = outcome.record.stats.median_ms
        pairs.add_values(medians["baseline"], medians["candidate"], pair)


class _Pairs:
    """The paired values measured so far: per pair, baseline and candidate ms, and, for
    interleaved batches, the batch (runner invocation) each came from. Pairs of whole
    runs are each their own replicate: no batches."""

    def __init__(self) -> None:
        self.baseline: list[float] = []
        self.candidate: list[float] = []
        self.batches: list[int] = []
        self.next_pair = 0

    def __len__(self) -> int:
        return len(self.baseline)

    def add(self, batch: int, baseline: list[Sample], candidate: list[Sample], offset: int) -> None:
        """The timed pairs of one interleaved batch (matched by their pair index)."""
        by_pair = {s.pair: s for s in candidate if not s.warmup}
        for sample in baseline:
            if sample.warmup or sample.pair not in by_pair:
                continue
            self.baseline.append(sample.latency_ms)
            self.candidate.append(by_pair[sample.pair].latency_ms)
            self.batches.append(batch)
        self.next_pair = offset + 1 + max(s.pair for s in baseline + candidate)

    def add_values(self, baseline_ms: float, candidate_ms: float, pair: int) -> None:
        """One pair of whole runs."""
        self.baseline.append(baseline_ms)
        self.candidate.append(candidate_ms)
        self.next_pair = pair + 1
