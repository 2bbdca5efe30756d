"""Shared helpers for the training tests: the digits smoke run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A small zoo model that learns the 32x32 digits in a few epochs on a CPU.
SMALL_MODEL = ["--arch", "mobilenet_v3_small", "--arch-option", "width_mult=0.5"]
DIGITS = ["--recipe", "digits", "--dataset", "digits"]


def train_argv(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "mobilebench.cli.main", "train", *SMALL_MODEL, *DIGITS,
        "--out", str(out), "--workers", "0", "--seed", "1", "--no-progress", *extra,
    ]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # Same thread count in every run, so float reductions happen in the same order.
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run_cli(argv: list[str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=subprocess_env(), capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def epoch_records(out: Path) -> list[dict]:
    return [r for r in read_log(out) if r["event"] == "epoch"]


@pytest.fixture(scope="session")
def ce_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted, deterministic cross-entropy run on digits (the resume reference)."""
    out = tmp_path_factory.mktemp("train") / "ce"
    run_cli(train_argv(out, "--loss", "ce", "--deterministic", "--log-every-steps", "1", "--format", "json"))
    return out
