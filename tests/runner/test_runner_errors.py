"""Bad input never crashes the runner: one JSON error line, a documented exit status."""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RUN_ERROR, USAGE_ERROR = 1, 2


def assert_clean_failure(result: Any, exit_code: int, message: str) -> str:
    """Exit status `exit_code` (not a signal), the last line an error matching `message`."""
    assert result.returncode == exit_code, result.describe()
    assert result.events, result.describe()
    last = result.events[-1]
    assert last["event"] == "error", result.describe()
    assert last["exit_code"] == exit_code
    assert "\n" not in last["message"]
    assert message in last["message"], last["message"]
    assert not result.of("iteration") and not result.of("summary")
    return last["message"]


def corrupt_variants(source: bytes, seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(seed)
    flipped = bytearray(source)
    for _ in range(64):
        flipped[rng.randrange(64, len(flipped))] ^= 1 << rng.randrange(8)
    bad_magic = bytearray(source)
    bad_magic[4:8] = b"XXXX"  # the flatbuffer file identifier ("ET12")
    return {
        "truncated": source[: len(source) // 3],
        "header_only": source[:16],
        "random": bytes(rng.randrange(256) for _ in range(4096)),
        "bad_magic": bytes(bad_magic),
        "text": b"this is not an ExecuTorch program\n" * 20,
        "bit_flips": bytes(flipped),
    }


def test_missing_model_file(run_runner: Callable[..., Any], tmp_path: Path) -> None:
    result = run_runner("--model", tmp_path / "nope.pte")
    assert_clean_failure(result, RUN_ERROR, f"model file not found: {tmp_path / 'nope.pte'}")


def test_empty_model_file_and_directory(run_runner: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "empty.pte").write_bytes(b"")
    assert_clean_failure(run_runner("--model", tmp_path / "empty.pte"), RUN_ERROR, "model file is empty")
    assert_clean_failure(run_runner("--model", tmp_path), RUN_ERROR, "is not a regular file")


@pytest.mark.slow
def test_corrupt_programs_are_reported_not_crashed_on(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    for name, data in corrupt_variants(tiny_pte.read_bytes()).items():
        path = tmp_path / f"{name}.pte"
        path.write_bytes(data)
        result = run_runner("--model", path, "--warmup", "0", "--iterations", "1")
        if name == "bit_flips" and result.returncode == 0:
            continue  # flips that landed in weights give a valid program with other numbers
        assert result.returncode == RUN_ERROR, f"{name}: {result.describe()}"
        message = result.events[-1]["message"]
        assert result.events[-1]["event"] == "error", f"{name}: {result.describe()}"
        assert "not a valid ExecuTorch program" in message or "cannot load method" in message, f"{name}: {message}"


def test_truncated_zoo_program(run_runner: Callable[..., Any], zoo_pte: Callable[..., Any], tmp_path: Path) -> None:
    data = zoo_pte("skipnet_m", "fp32").path.read_bytes()
    path = tmp_path / "skipnet_m_truncated.pte"
    path.write_bytes(data[: len(data) // 2])
    assert_clean_failure(run_runner("--model", path), RUN_ERROR, "not a valid ExecuTorch program")


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("1,3,16,16", "the program rejected input 0 of shape [1,3,16,16]"),  # static program: smaller refused
        ("1,3,64,64", "does not fit the program's input shape [1,3,32,32]"),
        ("1,3,32", "has 3 dimensions; the program expects 4"),
        ("1,3,32,32,1", "has 5 dimensions; the program expects 4"),
    ],
)
def test_wrong_input_shape(run_runner: Callable[..., Any], tiny_pte: Path, shape: str, message: str) -> None:
    assert_clean_failure(run_runner("--model", tiny_pte, "--input-shape", shape), RUN_ERROR, message)


def test_wrong_input_shape_for_a_zoo_model(run_runner: Callable[..., Any], zoo_pte: Callable[..., Any]) -> None:
    artifact = zoo_pte("skipnet_m", "fp32")
    assert artifact.input_shape == (1, 3, 224, 224)
    result = run_runner("--model", artifact.path, "--input-shape", "1,3,160,160")
    assert_clean_failure(result, RUN_ERROR, "the program rejected input 0 of shape [1,3,160,160]")


def test_input_count_mismatch(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    result = run_runner("--model", tiny_pte, "--input-shape", "1,3,32,32", "--input-shape", "1,3,32,32")
    assert_clean_failure(result, USAGE_ERROR, "takes 1 input(s), but --input-shape was given 2 time(s)")


def test_input_file_of_the_wrong_size(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    data = tmp_path / "input.bin"
    data.write_bytes(b"\0" * 100)
    message = "input file {} has 100 bytes; input 0 of shape [1,3,32,32] needs 12288 bytes".format(data)
    assert_clean_failure(run_runner("--model", tiny_pte, "--input", data), RUN_ERROR, message)
    assert_clean_failure(run_runner("--model", tiny_pte, "--input", tmp_path / "none.bin"), RUN_ERROR, "cannot read input file")


def test_unknown_method(run_runner: Callable[..., Any], tiny_pte: Path) -> None:
    result = run_runner("--model", tiny_pte, "--method", "backward")
    assert_clean_failure(result, RUN_ERROR, "the program has no method 'backward' (it has: forward)")


def test_unwritable_output_path(run_runner: Callable[..., Any], tiny_pte: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "out.bin"
    result = run_runner("--model", tiny_pte, "--warmup", "0", "--iterations", "1", "--dump-output", target)
    assert_clean_failure(result, RUN_ERROR, f"cannot write {target} (--dump-output)")
    assert not target.parent.exists()  # checked before running, nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--model PATH is required"),
        (["--model"], "--model needs a value"),
        (["--model", "m.pte", "--bogus"], "unknown option '--bogus'"),
        (["--model", "m.pte", "--iterations", "0"], "--iterations expects an integer from 1"),
        (["--model", "m.pte", "--iterations", "12abc"], "--iterations expects an integer"),
        (["--model", "m.pte", "--warmup", "-1"], "--warmup expects an integer from 0"),
        (["--model", "m.pte", "--threads", "0"], "--threads expects an integer from 1"),
        (["--model", "m.pte", "--seed", "-3"], "--seed expects an integer from 0 to 4294967295"),
        (["--model", "m.pte", "--seed", "4294967296"], "--seed expects an integer from 0 to 4294967295"),
        (["--model", "m.pte", "--input-shape", "1,x,3"], "--input-shape expects positive integers"),
        (["--model", "m.pte", "--input-shape", "1,0,3"], "--input-shape expects positive integers"),
        (["--model", "m.pte", "--target-rel-ci", "0"], "--target-rel-ci expects a fraction between 0 and 1"),
        (["--model", "m.pte", "--target-rel-ci", "nan"], "--target-rel-ci expects a number"),
        (["--model", "m.pte", "--min-seconds", "-1"], "--min-seconds must be >= 0"),
        (["--model", "m.pte", "--max-iterations", "50"], "--max-iterations only applies with"),
        (["--model", "m.pte", "--iterations", "20", "--target-rel-ci", "0.1", "--max-iterations", "10"],
         "--max-iterations (10) is below --iterations (20)"),
        (["--model=m.pte", "--version=1"], "--version takes no value"),
    ],
)  # fmt: skip
def test_bad_command_lines(run_runner: Callable[..., Any], args: list[str], message: str) -> None:
    result = run_runner(*args)
    assert_clean_failure(result, USAGE_ERROR, message)
    assert "usage: mobilebench_runner" in result.stderr


def test_a_fatal_signal_still_ends_the_stream_with_an_error_line(runner_path: Path, tiny_pte: Path) -> None:
    """The crash guard: if the process dies on a signal anyway, the JSON stream says so."""
    argv = [str(runner_path), "--model", str(tiny_pte), "--warmup", "0", "--iterations", "10000000"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "iteration":
                proc.send_signal(signal.SIGSEGV)
                break
        rest = proc.stdout.read().splitlines()
        assert proc.wait(timeout=30) == -signal.SIGSEGV
    last = json.loads(rest[-1])
    assert last["event"] == "error" and last["signal"] == "SIGSEGV"
    assert all(json.loads(line)["event"] in ("iteration", "error") for line in rest)
