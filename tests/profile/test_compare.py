"""``mobilebench compare`` end to end: both models in one session, interleaved, every
sample stored with its pairing, a three-way verdict with its exit status.

The plans here are tiny (a few tens of pairs): these tests check the measurement and
its storage, not statistical power (``benchmarks/bench_compare_power.py`` measures that).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilebench.bench.compare import CompareConfig, CompareSession
from mobilebench.bench.hooks import ProgressHooks
from mobilebench.bench.paired import EXIT_CODES
from mobilebench.bench.session import ProfileConfig
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.records import VERDICTS
from mobilebench.store import ResultsStore
from mobilebench.zoo.resolve import resolve_model

pytestmark = pytest.mark.slow

JSON_KEYS = {"verdict", "ratio", "ci_low", "ci_high", "pairs", "seconds", "baseline_median_ms", "candidate_median_ms"}


def check_stored(db: Path, result: dict) -> None:
    """The comparison row and its runs: two per batch, samples paired by ``pair``."""
    with ResultsStore(db, create=False) as store:
        comparison = store.get_comparison(result["comparison_id"])
        assert comparison is not None and comparison.status == "ok" and comparison.verdict == result["verdict"]
        runs = [store.get_run(i) for i in result["runs"]]
        assert all(r.status == "ok" and r.meta.comparison_id == comparison.id for r in runs)
        timed_pairs = 0
        for a, b in zip(runs[::2], runs[1::2]):
            assert {a.meta.model, b.meta.model} <= {comparison.baseline, comparison.candidate}
            pa = {s.pair: s for s in store.samples(a.id)}
            pb = {s.pair: s for s in store.samples(b.id)}
            assert pa.keys() == pb.keys() and None not in pa
            timed_pairs += sum(not s.warmup for s in pa.values())
        assert timed_pairs == comparison.pairs == result["pairs"]


def test_compare_on_the_host_interleaved_through_the_cli(cli, tmp_path: Path, skipnet_pte, mobilenet_pte) -> None:
    db = tmp_path / "compare.sqlite"
    args = ["compare", "skipnet_m", "mobilenet_v3_large", "--device", "host", "--pairs", "12", "--batches", "2"]
    result = cli(*args, "--looks", "1", "--warmup", "1", "--db", db, "--format", "json")
    assert result.exit_code in (0, 1, 3), result.stderr
    out = json.loads(result.stdout)
    assert JSON_KEYS <= out.keys() and out["verdict"] in VERDICTS
    assert result.exit_code == EXIT_CODES[out["verdict"]]
    assert out["mode"] == "interleaved" and out["pairs"] == 24 and len(out["runs"]) == 4
    assert out["ci_low"] <= out["ratio"] <= out["ci_high"]
    # Interleaved in one process: both medians come from the same pairs.
    assert out["baseline_median_ms"] > 0 and out["candidate_median_ms"] > 0
    check_stored(db, out)
    listed = cli("runs", "--db", db, "--format", "json")
    assert {r["comparison_id"] for r in json.loads(listed.stdout)} == {out["comparison_id"]}
    table = cli("runs", "--db", db)
    assert f"cmp {out['comparison_id']}" in table.stdout


def test_compare_through_the_emulated_phone(cli, phone, tmp_path: Path, skipnet_pte) -> None:
    db = tmp_path / "emulated.sqlite"
    args = ["compare", "skipnet_m", "skipnet_m", "--device", "emulator", "--address", phone.address]
    result = cli(*args, "--pairs", "10", "--batches", "1", "--looks", "1", "--db", db, "--format", "json")
    out = json.loads(result.stdout)
    assert result.exit_code == EXIT_CODES[out["verdict"]], result.stderr
    assert out["device"] == "emulator" and out["pairs"] == 10
    check_stored(db, out)
    with ResultsStore(db, create=False) as store:
        assert all(store.get_run(i).meta.emulated for i in out["runs"])


def test_different_runtimes_compare_as_alternating_whole_runs(tmp_path: Path, skipnet, skipnet_pte, skipnet_onnx) -> None:
    """fp32 ExecuTorch against ONNX on one device: the runs alternate A B, B A, ..."""
    config = CompareConfig(
        profile=ProfileConfig(device="host"), candidate_runtime="onnx", pairs_per_batch=6, warmup=1,
        batches_per_look=3, max_looks=1,
    )  # fmt: skip
    with ResultsStore(tmp_path / "alternating.sqlite") as store:
        session = CompareSession(config, store)
        assert session.mode == "alternating"
        outcome = session.run(skipnet, skipnet)
        runs = [store.get_run(i) for i in outcome.run_ids]
        assert [r.meta.runtime for r in runs] == ["executorch", "onnx", "onnx", "executorch", "executorch", "onnx"]
        assert [{s.pair for s in store.samples(r.id)} for r in runs] == [{0}, {0}, {1}, {1}, {2}, {2}]
        assert outcome.record.pairs == 3 and outcome.record.mode == "alternating"
        assert outcome.decision.verdict == "unknown"  # three pairs of runs cannot give an interval


def test_comparing_what_is_not_alike_needs_saying_so(tmp_path: Path, skipnet_pte, skipnet_onnx) -> None:
    with ResultsStore(tmp_path / "refused.sqlite") as store:
        pte, onnx = resolve_model(str(skipnet_pte.path)), resolve_model(str(skipnet_onnx.path))
        with pytest.raises(UsageError, match="--candidate-runtime onnx"):
            CompareSession(CompareConfig(profile=ProfileConfig(device="host")), store).run(pte, onnx)
        small = resolve_model("skipnet_m", input_size=160)
        with pytest.raises(UsageError, match="--allow-input-mismatch"):
            CompareSession(CompareConfig(profile=ProfileConfig(device="host")), store).run(pte, small)
        assert store.comparisons() == []  # refused before anything was measured


class CrashAfterFirstBatch(ProgressHooks):
    """Arms the emulator's runner crash once the first runner window has ended."""

    def __init__(self, phone) -> None:
        self.phone = phone
        self.windows = 0

    @contextlib.contextmanager
    def measuring(self, *, on_this_computer: bool) -> Iterator[None]:
        yield
        self.windows += 1
        if self.windows == 1:
            self.phone.faults.crash_match = "mobilebench_runner"
            self.phone.faults.crash_next_command = True


def test_a_model_failing_mid_comparison_keeps_what_was_measured(phone, tmp_path: Path, skipnet, skipnet_pte) -> None:
    config = CompareConfig(
        profile=ProfileConfig(device="emulator", address=phone.address), pairs_per_batch=8, warmup=1,
        batches_per_look=2, max_looks=1,
    )  # fmt: skip
    with ResultsStore(tmp_path / "crashed.sqlite") as store:
        session = CompareSession(config, store, hooks=CrashAfterFirstBatch(phone))
        with pytest.raises(MobilebenchError, match=r"comparison \d+ stored as failed after 8 pairs: .*SIGSEGV") as info:
            session.run(skipnet, skipnet)
        assert "\n" not in str(info.value)
        (comparison,) = store.comparisons()
        assert comparison.status == "failed" and "SIGSEGV" in comparison.error
        first, second = session.run_ids[:2], session.run_ids[2:]
        assert [store.get_run(i).status for i in first] == ["ok", "ok"]
        assert [store.get_run(i).status for i in second] == ["failed", "failed"]
        assert all(len(store.samples(i)) == 9 for i in first)
