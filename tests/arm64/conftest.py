"""Fixtures for the arm64 runner bundle: the bundle, qemu, and a digits model with real outputs.

The bundle is built by ``make runner-arm64`` (``make test`` builds it first); tests FAIL,
not skip, when it or qemu is missing, so a broken build cannot pass unseen.

qemu always gets ``-cpu cortex-a76`` (the Pixel 4's big cores): its default CPU offers
SME, XNNPACK then picks SME kernels, and int8 results come out wrong. Under qemu an
iteration is 100-500x slower than on this computer, so the model is small (MobileNetV3
Small at 32x32) and runs are a few iterations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mobilebench.bench.runner_builds import NATIVE_RUNNER_BUILDS, BundleManifest

QEMU_CPU = "cortex-a76"
DIGITS_INPUT_SIZE = 32  # what the digits recipe trains at


@pytest.fixture(scope="session")
def bundle() -> Path:
    folder = NATIVE_RUNNER_BUILDS["linux-arm64"]
    if not (folder / "manifest.json").is_file():
        pytest.fail(f"the arm64 bundle is not built: {folder} is missing; run `make runner-arm64`", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def manifest(bundle: Path) -> BundleManifest:
    return BundleManifest.read(bundle)


@pytest.fixture(scope="session")
def qemu() -> Path:
    path = shutil.which("qemu-aarch64-static")
    if path is None:
        pytest.fail("qemu-aarch64-static is missing; run `make runner-arm64` (it installs qemu-user-static)", pytrace=False)
    return Path(path)


def loader_argv(folder: Path | str, manifest: BundleManifest) -> list[str]:
    """The bundle's runner started through its own loader (the way a phone starts it)."""
    return [f"{folder}/{manifest.loader}", "--library-path", f"{folder}/{manifest.library_dir}", f"{folder}/{manifest.runner}"]


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@dataclass
class Finished:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = [e for e in self.events if e["event"] == kind]
        return found

    def timed_ms(self) -> list[float]:
        return [e["ms"] for e in self.events if e["event"] == "iteration" and not e["warmup"]]


Run = Callable[..., Finished]


def _finished(argv: list[str], timeout: float) -> Finished:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{argv} -> {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return Finished(proc.returncode, events(proc.stdout), proc.stderr)


@pytest.fixture(scope="session")
def run_arm64(bundle: Path, manifest: BundleManifest, qemu: Path) -> Run:
    """Runs the bundle's runner under qemu through its loader; asserts exit status 0."""

    def run(*args: str | os.PathLike[str], timeout: float = 120) -> Finished:
        return _finished([str(qemu), "-cpu", QEMU_CPU, *loader_argv(bundle, manifest), *map(str, args)], timeout)

    return run


@pytest.fixture(scope="session")
def run_host(runner_binary: Path) -> Run:
    def run(*args: str | os.PathLike[str], timeout: float = 120) -> Finished:
        return _finished([str(runner_binary), *map(str, args)], timeout)

    return run


@dataclass(frozen=True)
class DigitsModel:
    """MobileNetV3 Small on 32x32 scikit-learn digits, exported fp32 and int8.

    Random-init zoo models give near-zero logits (and all-zero int8 outputs), so this
    one gets BatchNorm statistics from digit images and a ridge-regression classifier
    on its penultimate features: logits of order 10 and a real top-1 (about 70 % on
    held-out digits), for seconds of CPU instead of a training run. ``inputs`` are
    held-out digits as raw float32 files (what ``--input`` reads); ``labels`` their
    classes.
    """

    checkpoint: Path
    pte: dict[str, Path]
    inputs: tuple[Path, ...]
    labels: tuple[int, ...]


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> DigitsModel:
    import torch
    from PIL import Image
    from sklearn.datasets import load_digits

    from mobilebench.export import ExportOptions, export_model
    from mobilebench.train.calibration import calibration_for
    from mobilebench.train.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess, eval_resize_for
    from mobilebench.zoo.resolve import resolve_model

    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    images = root / "images"  # also the int8 calibration folder (a fixed sample of it)
    images.mkdir()
    paths = []
    for i, pixels in enumerate(digits.images):
        paths.append(images / f"{i:04d}.png")
        Image.fromarray((pixels * (255 / 16)).round().astype(np.uint8)).save(paths[-1])
    size = DIGITS_INPUT_SIZE
    # The pixels the folder calibration feeds: ImageNet statistics, resize and centre crop.
    preprocess = Preprocess(size, IMAGENET_MEAN, IMAGENET_STD, "none", eval_resize_for(size))
    x = torch.stack([preprocess(Image.open(p)) for p in paths])
    y = torch.as_tensor(digits.target)
    held_out = torch.arange(len(y)) % 5 == 0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        zoo = resolve_model("mobilenet_v3_small", input_size=size, num_classes=10)
        model = zoo.build()
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None  # a plain average over the batch
        with torch.no_grad():
            model.train()
            model(x[~held_out][:512])
            model.eval()
            head = model.classifier[-1]
            features: list[torch.Tensor] = []
            hook = head.register_forward_hook(lambda _m, inputs, _out: features.append(inputs[0]))
            model(x[~held_out])
            hook.remove()
            f = torch.nn.functional.pad(features[0].double(), (0, 1), value=1.0)  # the bias column
            # Targets 10 for the class and 0 for the others: logits of a trained classifier's size.
            target = 10.0 * torch.nn.functional.one_hot(y[~held_out], 10).double()
            ridge = 1e-3 * f.pow(2).sum() / len(f)
            w = torch.linalg.solve(f.T @ f + ridge * torch.eye(f.shape[1], dtype=f.dtype), f.T @ target)
            head.weight.copy_(w[:-1].T)
            head.bias.copy_(w[-1])
    finally:
        torch.set_num_threads(threads)
    checkpoint = root / "mobilenet_v3_small_digits.pt"
    torch.save(model.state_dict(), checkpoint)

    resolved = resolve_model("mobilenet_v3_small", input_size=size, num_classes=10, checkpoint=checkpoint)
    pte = {
        "fp32": export_model(resolved, ExportOptions(dtype="fp32")).path,
        "int8": export_model(resolved, ExportOptions(dtype="int8", calibration=calibration_for(resolved, str(images)))).path,
    }
    picks = torch.nonzero(held_out).flatten()[:2].tolist()
    inputs = []
    for i in picks:
        inputs.append(root / f"digit{i}.f32")
        x[i : i + 1].numpy().astype("<f4").tofile(inputs[-1])
    return DigitsModel(checkpoint, pte, tuple(inputs), tuple(int(y[i]) for i in picks))
