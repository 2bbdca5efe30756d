"""Export-area fixtures: real zoo models exported once per test session.

The artifacts land in the session's shared MOBILEBENCH_CACHE_DIR (see tests/conftest.py),
so later areas (runner, profile) reuse them from the cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mobilebench.export import Artifact, ExportOptions, export_model
from mobilebench.zoo import list_models, register_model
from mobilebench.zoo.blocks import (
    ConvBNAct,
    InvertedResidual,
    InvertedResidualConfig,
    ZooModel,
    init_mobilenet_weights,
)
from mobilebench.zoo.resolve import ResolvedModel, resolve_model


@pytest.fixture(scope="session")
def skipnet_m() -> ResolvedModel:
    return resolve_model("skipnet_m")


@pytest.fixture(scope="session")
def skipnet_fp32_pte(skipnet_m: ResolvedModel) -> Artifact:
    return export_model(skipnet_m, ExportOptions(runtime="executorch", dtype="fp32"))


@pytest.fixture(scope="session")
def skipnet_int8_pte(skipnet_m: ResolvedModel) -> Artifact:
    return export_model(skipnet_m, ExportOptions(runtime="executorch", dtype="int8"))


@pytest.fixture(scope="session")
def skipnet_onnx(skipnet_m: ResolvedModel) -> Artifact:
    return export_model(skipnet_m, ExportOptions(runtime="onnx"))


# --- a network trained on digits, for the accuracy of its artifacts ---------------------

DIGITS_ARCH = "test_digits_net"


class DigitsNet(ZooModel):
    """A small network of the zoo's own blocks (hard-swish, SE, depthwise), trained on
    scikit-learn's digits in seconds, and exported in seconds: the tests measure its
    artifacts' accuracy in their runtimes."""

    def __init__(self, *, num_classes: int, width: int) -> None:
        super().__init__()
        wide = 3 * width // 2
        self.num_classes, self.num_features = num_classes, 4 * wide
        self.features = nn.Sequential(
            ConvBNAct(3, width, 3, stride=2, activation=nn.Hardswish),  # 16x16
            InvertedResidual(InvertedResidualConfig(width, 3, 4 * width, wide, 2, "RE")),  # 8x8
            InvertedResidual(InvertedResidualConfig(wide, 3, 4 * wide, wide, 1, "HS", se_channels=wide)),
            ConvBNAct(wide, self.num_features, 1, activation=nn.Hardswish),
        )
        self.classifier = nn.Linear(self.num_features, num_classes)
        init_mobilenet_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(features, 1), 1))


if DIGITS_ARCH not in list_models():

    @register_model(DIGITS_ARCH)
    def test_digits_net(*, num_classes: int = 10, width: int = 32) -> DigitsNet:
        """Test network: a few zoo blocks for 32x32 digits."""
        return DigitsNet(num_classes=num_classes, width=width)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``best.pt`` of ``mobilebench train`` on digits (the recipe's six epochs: seconds)."""
    from mobilebench.cli.main import main

    out = tmp_path_factory.mktemp("digits_run")
    argv = ["train", "--arch", DIGITS_ARCH, "--arch-option", "width=32", "--recipe", "digits", "--dataset", "digits",
            "--out", str(out), "--workers", "0", "--seed", "0", "--no-progress", "--format", "json"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return out / "best.pt"
