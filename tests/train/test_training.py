"""End-to-end training on real data (scikit-learn digits): learning, exact resume, DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mobilebench import create_model
from mobilebench.zoo import load_checkpoint

pytestmark = pytest.mark.slow

# A small zoo model that learns the 32x32 digits in a few epochs on a CPU.
SMALL_MODEL = ["--arch", "mobilenet_v3_small", "--arch-option", "width_mult=0.5"]
DIGITS = ["--recipe", "digits", "--dataset", "digits"]


def train_argv(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mobilebench.cli.main",
        "train",
        *SMALL_MODEL,
        *DIGITS,
        "--out",
        str(out),
        "--workers",
        "0",
        "--seed",
        "1",
        "--no-progress",
        *extra,
    ]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # Same thread count in every run, so float reductions happen in the same order; one
    # thread, because these tiny models gain nothing from more and suffer on a busy machine.
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_cli(argv: list[str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=subprocess_env(), capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def epoch_records(out: Path) -> list[dict]:
    return [r for r in read_log(out) if r["event"] == "epoch"]


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted, deterministic cross-entropy run on digits (the resume reference)."""
    out = tmp_path_factory.mktemp("train") / "ce"
    run_cli(train_argv(out, "--loss", "ce", "--deterministic", "--log-every-steps", "1", "--format", "json"))
    return out


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def test_cross_entropy_learns_digits(ce_run: Path) -> None:
    final = epoch_records(ce_run)[-1]
    assert final["val_top1"] >= 90.0, final
    assert final["val_count"] == 360

    # Checkpoints hold plain data only, and their weights load into a fresh zoo model.
    last = torch.load(ce_run / "last.pt", weights_only=True)
    best = torch.load(ce_run / "best.pt", weights_only=True)
    assert last["epoch"] == last["completed_epochs"] == last["recipe"]["epochs"]
    assert last["classes"] == [str(d) for d in range(10)] and last["world_size"] == 1
    assert {"optimizer", "rank_states", "scaler", "scheduler"} <= last.keys()
    assert not {"optimizer", "rank_states"} & best.keys()
    assert isinstance(last["rank_states"][0]["rng"]["torch"], torch.Tensor)
    model = create_model("mobilenet_v3_small", num_classes=10, width_mult=0.5)
    loaded = load_checkpoint(model, ce_run / "last.pt")
    assert loaded.wrapper_key == "model"
    assert_same_tensors(model.state_dict(), last["model"])
    assert best["best_top1"] == max(r["val_top1"] for r in epoch_records(ce_run))


def test_eval_of_a_trained_checkpoint_matches_the_training_log(ce_run: Path, tmp_path: Path, cli) -> None:
    from mobilebench.store import ResultsStore
    from mobilebench.zoo.checkpoint import file_sha256

    db = tmp_path / "r.sqlite"
    # Architecture options, class count and input size come from the checkpoint itself.
    result = cli(
        "eval",
        "mobilenet_v3_small",
        "--checkpoint",
        ce_run / "best.pt",
        "--dataset",
        "digits",
        "--db",
        db,
        "--workers",
        "0",
        "--no-progress",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    best = max(epoch_records(ce_run), key=lambda r: r["val_top1"])
    assert row["top1"] == pytest.approx(best["val_top1"], abs=1e-3)
    assert row["top5"] == pytest.approx(best["val_top5"], abs=1e-3)
    assert (row["dataset"], row["count"], row["input_size"]) == ("digits", 360, 32)
    with ResultsStore(db) as store:
        stored = store.accuracy("mobilenet_v3_small")
    assert stored.checkpoint_sha256 == file_sha256(ce_run / "best.pt")


def test_bias_loss_learns_digits(tmp_path: Path) -> None:
    out = tmp_path / "bias"
    run_cli(train_argv(out, "--loss", "bias"))
    final = epoch_records(out)[-1]
    assert final["val_top1"] >= 90.0, final
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["recipe"]["loss"] == "bias" and checkpoint["recipe"]["bias_normalization"] == "batch"


def test_killed_run_resumes_to_identical_weights(ce_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    argv = train_argv(out, "--loss", "ce", "--deterministic", "--log-every-steps", "1")
    proc = subprocess.Popen(argv, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Wait for the first epoch's checkpoint, then for a step of the second epoch.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "last.pt").exists() and any(r.get("epoch") == 1 for r in _safe_log(out)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 0)
    assert any(r["event"] == "step" and r["epoch"] == 1 for r in read_log(out))  # killed mid-epoch

    run_cli(argv + ["--resume"])

    reference = torch.load(ce_run / "last.pt", weights_only=True)
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert_same_tensors(resumed["model"], reference["model"])
    for a, b in zip(resumed["optimizer"]["state"].values(), reference["optimizer"]["state"].values(), strict=True):
        assert_same_tensors(a, b)
    # The log reads as one run: the killed epoch's records were replaced, losses identical.
    strip = ("epoch_time_s", "images_per_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in read_log(out)] == [
        {k: v for k, v in r.items() if k not in strip} for r in read_log(ce_run)
    ]


def _safe_log(out: Path) -> list[dict]:
    try:
        return read_log(out)
    except (FileNotFoundError, ValueError):
        return []  # not written yet, or a line half-written at this instant


def test_resume_and_overwrite_guards(ce_run: Path, cli) -> None:
    base = train_argv(ce_run)[3:]  # drop "python -m mobilebench.cli.main"
    for extra, message in {
        (): "already holds a training run",
        ("--resume", "--lr", "0.2"): "lr: 0.05 -> 0.2",
        ("--resume", "--seed", "2"): "seed",
        ("--resume", "--set", "no_such_key=1"): "--set: unknown key 'no_such_key'",
    }.items():
        # A UsageError: exit 2 and one "error: ..." line.
        result = cli(*base, *extra)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), (extra, result)
        assert message in result.stderr and result.stderr.count("\n") == 1, (extra, result)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_on_cpu(tmp_path: Path) -> None:
    out, dumps = tmp_path / "ddp", tmp_path / "dumps"
    worker = Path(__file__).with_name("ddp_worker.py")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            str(worker),
            str(out),
            str(dumps),
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rank0 = torch.load(dumps / "rank0.pt", weights_only=True)
    rank1 = torch.load(dumps / "rank1.pt", weights_only=True)
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert_same_tensors(rank0, rank1)
    assert_same_tensors(rank0, checkpoint["model"])
    # One writer: exactly one checkpoint set and one log, no per-rank files.
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "log.jsonl"]
    assert checkpoint["world_size"] == 2 and len(checkpoint["rank_states"]) == 2
    # 1437 training images, 32 per process and step: 22 steps per epoch on each rank.
    assert checkpoint["global_step"] == 2 * 22
    assert checkpoint["loss"]["running_min"].item() < 1e5  # Bias Loss in the authors' mode ran
    # With an EMA, load_checkpoint picks the EMA weights, as the paper evaluates them.
    model = create_model("mobilenet_v3_small", num_classes=10, width_mult=0.5)
    assert load_checkpoint(model, out / "last.pt").wrapper_key == "model_ema"
    assert_same_tensors(model.state_dict(), checkpoint["model_ema"])
    records = epoch_records(out)
    assert len(records) == 2 and records[-1]["val_count"] == 360
    assert os.environ.get("RANK") is None  # nothing leaked into the test process


def test_imagenet_and_cifar_recipes_run_end_to_end(tmp_path: Path, cli) -> None:
    """The other two data paths and recipes (RMSProp-TF + EMA + random-resized crops;
    SGD + CIFAR crops/rotations) on tiny data: they run, checkpoint and evaluate."""
    import pickle

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "imagenet"
    for split, count in (("train", 4), ("val", 2)):
        for cls in ("n01", "n02"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (30 + 7 * i, 45, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / split / cls / f"{i}.jpg")
    cifar = tmp_path / "cifar" / "cifar-100-python"
    cifar.mkdir(parents=True)
    for split, count in (("train", 6), ("test", 3)):
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"fine_labels": list(range(count))}
        (cifar / split).write_bytes(pickle.dumps(batch, protocol=3))

    common = [*SMALL_MODEL, "--workers", "0", "--no-progress", "--epochs", "2", "--format", "json"]
    runs = {
        "imagenet": [
            "--recipe",
            "imagenet",
            "--data",
            str(folder),
            "--batch-size",
            "4",
            "--set",
            "input_size=48",
            "--set",
            "warmup_epochs=1",
            "--loss",
            "bias",
        ],
        "cifar100": [
            "--recipe",
            "cifar100",
            "--dataset",
            "cifar100",
            "--data",
            str(tmp_path / "cifar"),
            "--batch-size",
            "3",
        ],
    }
    for name, argv in runs.items():
        out = tmp_path / f"out_{name}"
        result = cli("train", *argv, *common, "--out", out)
        assert result.exit_code == 0, (name, result.output)
        (summary,) = json.loads(result.stdout)
        assert summary["epochs"] == 2 and summary["recipe"] == name
        checkpoint = torch.load(out / "last.pt", weights_only=True)
        assert checkpoint["global_step"] == 4
        assert ("model_ema" in checkpoint) == (name == "imagenet")
        assert checkpoint["num_classes"] == (2 if name == "imagenet" else 100)
        records = epoch_records(out)
        assert [r["epoch"] for r in records] == [0, 1] and records[-1]["val_count"] == (4 if name == "imagenet" else 3)
