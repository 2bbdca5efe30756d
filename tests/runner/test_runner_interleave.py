"""Two programs in one runner process, executed alternately in ABBA pairs (--interleave)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mobilebench.bench.runners import InterleavedRequest, RunnerFailed, interleaving_adapter

RUN_ERROR, USAGE_ERROR = 1, 2


def abba(pairs: int) -> list[tuple[int, int]]:
    """(pair, model) in execution order: A B, B A, A B, ..."""
    return [(p, m) for p in range(pairs) for m in ((0, 1) if p % 2 == 0 else (1, 0))]


def stdout_of(result: Any) -> str:
    return "".join(json.dumps(e) + "\n" for e in result.events)


def test_two_programs_of_different_input_shapes_run_in_abba_pairs(
    run_runner: Callable[..., Any], tiny_pte: Path, tiny48_pte: Path
) -> None:
    warmup, pairs = 2, 12
    result = run_runner("--model", tiny_pte, "--model", tiny48_pte, "--interleave",
                        "--warmup", str(warmup), "--iterations", str(pairs))  # fmt: skip
    assert result.returncode == 0, result.describe()
    kinds = [e["event"] for e in result.events]
    assert kinds == ["start", "load", "load"] + ["iteration"] * 2 * (warmup + pairs) + ["summary", "summary"]
    start = result.one("start")
    assert start["models"] == [str(tiny_pte), str(tiny48_pte)] and start["interleave"] is True
    assert "model" not in start and (start["warmup"], start["iterations"]) == (warmup, pairs)

    # Each program is loaded twice and fed its own input shape.
    loads = result.of("load")
    assert [(e["model"], e["path"]) for e in loads] == [(0, str(tiny_pte)), (1, str(tiny48_pte))]
    assert [e["inputs"][0]["shape"] for e in loads] == [[1, 3, 32, 32], [1, 3, 48, 48]]
    assert all(e["ms"] > 0 and e["warm_ms"] > 0 and e["planned_memory_bytes"] > 0 for e in loads)

    iterations = result.of("iteration")
    assert [(e["pair"], e["model"]) for e in iterations] == abba(warmup + pairs)
    assert all(e["i"] == e["pair"] and e["warmup"] == (e["pair"] < warmup) for e in iterations)

    summaries = result.of("summary")
    assert [e["model"] for e in summaries] == [0, 1]
    for m, summary in enumerate(summaries):
        timed = [e["ms"] for e in iterations if e["model"] == m and not e["warmup"]]
        assert summary["iterations"] == pairs and summary["stop_reason"] == "iterations"
        assert summary["median_ms"] == pytest.approx(statistics.median(timed), abs=1.5e-6)
    assert summaries[0]["peak_rss_bytes"] == summaries[1]["peak_rss_bytes"] > 0

    # Parsed as the comparison reads it: one run per program, samples paired by `pair`.
    request = InterleavedRequest((str(tiny_pte), str(tiny48_pte)), warmup=warmup, pairs=pairs)
    a, b = interleaving_adapter("mobilebench_runner").parse_interleaved(stdout_of(result), request=request)
    assert [s.pair for s in a.samples] == [s.pair for s in b.samples] == list(range(warmup + pairs))
    assert len(a.timed_ms) == len(b.timed_ms) == pairs
    assert (a.load_ms, b.warm_load_ms) == (loads[0]["ms"], loads[1]["warm_ms"])
    # tiny48 does about 4.5x the multiply-adds of tiny: slower in (nearly) every pair.
    slower = sum(sb.latency_ms > sa.latency_ms for sa, sb in zip(a.samples, b.samples, strict=True) if not sa.warmup)
    assert slower >= pairs - 2, (a.timed_ms, b.timed_ms)


def test_input_shapes_belong_to_the_model_before_them(
    run_runner: Callable[..., Any], tiny_pte: Path, tiny48_pte: Path
) -> None:
    ok = run_runner("--input-shape", "1,3,32,32", "--model", tiny_pte, "--model", tiny48_pte,
                    "--input-shape", "1,3,48,48", "--interleave", "--warmup", "0", "--iterations", "2")  # fmt: skip
    assert ok.returncode == 0, ok.describe()
    swapped = run_runner("--model", tiny_pte, "--model", tiny48_pte, "--input-shape", "1,3,32,32", "--interleave")
    assert swapped.returncode == RUN_ERROR
    assert swapped.events[-1]["message"].startswith(f"model 1 ({tiny48_pte}): the program rejected input 0")
    assert swapped.events[-1]["model"] == 1


@pytest.mark.parametrize("failing", [0, 1])
def test_a_program_failing_mid_run_is_named_and_what_ran_is_kept(
    run_runner: Callable[..., Any], tiny_pte: Path, fails_later_pte: Any, failing: int
) -> None:
    paths = [tiny_pte, tiny_pte]
    paths[failing] = fails_later_pte.path
    result = run_runner("--model", paths[0], "--model", paths[1], "--interleave", "--warmup", "1", "--iterations", "6")
    assert result.returncode == RUN_ERROR, result.describe()
    error = result.events[-1]
    # Its 4th execution is in pair 3 (warm-up pair 0, timed pairs 1-3).
    fail_pair = fails_later_pte.fails_at_execution - 1
    assert error == {
        "event": "error",
        "message": f"model {failing} ({fails_later_pte.path}): execution failed in timed pair {fail_pair}: "
        "InvalidArgument (ExecuTorch error 0x12)",
        "exit_code": RUN_ERROR,
        "model": failing,
    }
    ran = [(e["pair"], e["model"]) for e in result.of("iteration")]
    executed = abba(fail_pair + 1)
    assert ran == executed[: executed.index((fail_pair, failing))]
    assert not result.of("summary")

    request = InterleavedRequest((str(paths[0]), str(paths[1])), warmup=1, pairs=6)
    with pytest.raises(RunnerFailed) as failure:
        interleaving_adapter("mobilebench_runner").parse_interleaved(stdout_of(result), request=request)
    assert str(failure.value).startswith(f"mobilebench_runner failed (program {failing}, {fails_later_pte.path}): ")
    assert failure.value.model == failing
    partial = failure.value.partial
    assert [len(out.samples) for out in partial] == [sum(1 for _, m in ran if m == k) for k in (0, 1)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--interleave"], "--interleave needs exactly two --model programs, got 1"),
        (["--model", "b.pte"], "--model was given 2 times; to run two programs alternately in one process, "
                               "add --interleave"),
        (["--model", "b.pte", "--model", "c.pte", "--interleave"],
         "--interleave needs exactly two --model programs, got 3"),
        (["--model", "b.pte", "--interleave", "--target-rel-ci", "0.01"], "--interleave runs a fixed number of pairs"),
        (["--model", "b.pte", "--interleave", "--min-seconds", "1"], "--interleave runs a fixed number of pairs"),
        (["--model", "b.pte", "--interleave", "--dump-output", "o.bin"], "--dump-output writes one program's output"),
        (["--model", "b.pte", "--interleave=yes"], "--interleave takes no value"),
    ],
)  # fmt: skip
def test_bad_interleaved_command_lines(run_runner: Callable[..., Any], extra: list[str], message: str) -> None:
    result = run_runner("--model", "a.pte", *extra)
    assert result.returncode == USAGE_ERROR, result.describe()
    assert message in result.events[-1]["message"]


def test_a_missing_second_program_is_named(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    result = run_runner("--model", tiny_pte, "--model", tmp_path / "gone.pte", "--interleave")
    assert result.returncode == RUN_ERROR
    gone = tmp_path / "gone.pte"
    assert result.events[-1]["message"] == f"model 1 ({gone}): model file not found: {gone}"
    assert [e["event"] for e in result.events] == ["error"]  # checked before anything runs


def test_etdump_traces_model_0_alone(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    """The same program traced (model 0) and untraced (model 1), paired: what tracing costs."""
    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    path = tmp_path / "traced.etdp"
    result = run_runner("--model", tiny_pte, "--model", tiny_pte, "--interleave", "--warmup", "1", "--iterations", "4",
                        "--etdump", path)  # fmt: skip
    assert result.returncode == 0, result.describe()
    assert result.one("etdump") == {"event": "etdump", "path": str(path), "bytes": path.stat().st_size,
                                    "executions": 5, "warmup": 1}  # fmt: skip
    blocks = [block.name for block in deserialize_from_etdump_flatcc(path.read_bytes()).run_data]
    assert blocks.count("Execute") == 5  # model 0's runs only
    assert [e["event"] for e in result.events][-3:] == ["etdump", "summary", "summary"]
