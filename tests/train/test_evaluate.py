"""``mobilebench eval`` on an ImageNet-layout folder with a model whose predictions are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from mobilebench.errors import UsageError
from mobilebench.store import ResultsStore
from mobilebench.train.evaluate import topk_correct
from mobilebench.train.transforms import IMAGENET_MEAN, IMAGENET_STD
from mobilebench.zoo import list_models, register_model
from mobilebench.files import file_sha256

ARCH = "test_mean_red"
# Class k is "an image whose red level is near 20 + 40 k" (0..255).
RED_LEVELS = [20 + 40 * k for k in range(6)]


class MeanRed(nn.Module):
    """Predicts the class whose red level is nearest the image's mean red (after normalisation)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        levels = (20 + 40 * torch.arange(num_classes, dtype=torch.float32)) / 255
        self.register_buffer("centres", (levels - IMAGENET_MEAN[0]) / IMAGENET_STD[0])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        red = features[:, 0].mean(dim=(1, 2))
        return -((red[:, None] - self.centres[None, :]) ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


if ARCH not in list_models():

    @register_model(ARCH)
    def build_mean_red(*, num_classes: int = 1000) -> MeanRed:
        """Test model: nearest red level."""
        return MeanRed(num_classes)


# (class folder, red level of each image in it). Predictions: nearest level.
IMAGES = {
    "c0": [RED_LEVELS[0], RED_LEVELS[0]],  # right, right
    "c1": [RED_LEVELS[3]],  # predicted c3; c1 is 3rd nearest: a top-5 hit
    "c2": [RED_LEVELS[2]],  # right
    "c3": [RED_LEVELS[3]],  # right
    "c4": [RED_LEVELS[5]],  # predicted c5; c4 is 2nd nearest: a top-5 hit
    "c5": [RED_LEVELS[0]],  # predicted c0; c5 is the farthest of 6: a top-5 miss
}
TOP1 = 100 * 4 / 7
TOP5 = 100 * 6 / 7


def make_folder(root: Path) -> Path:
    for cls, levels in IMAGES.items():
        (root / "val" / cls).mkdir(parents=True)
        for i, level in enumerate(levels):
            # Odd sizes: resize-256 and centre-crop still give a flat colour.
            Image.new("RGB", (300 + 40 * i, 200), (level, 90, 30)).save(root / "val" / cls / f"{i}.png")
    return root


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pt"
    torch.save(MeanRed(6).state_dict(), path)
    return path


def test_topk_correct() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2], [0.3, 0.2, 0.5]])
    assert topk_correct(logits, torch.tensor([1, 2, 1]), ks=(1, 2, 5)) == [1, 2, 3]


def test_eval_reports_known_accuracy_and_records_it(tmp_path: Path, weights: Path, cli) -> None:
    data = make_folder(tmp_path / "tinynet")
    db = tmp_path / "results.sqlite"
    result = cli(
        "eval",
        ARCH,
        "--data",
        data,
        "--checkpoint",
        weights,
        "--db",
        db,
        "--num-classes",
        "6",
        "--input-size",
        "64",
        "--batch-size",
        "3",
        "--workers",
        "0",
        "--no-progress",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["top1"] == pytest.approx(TOP1, abs=1e-3) and row["top5"] == pytest.approx(TOP5, abs=1e-3)
    assert (row["count"], row["dataset"], row["split"], row["weights"]) == (7, "tinynet", "val", "plain")

    with ResultsStore(db) as store:
        stored = store.accuracy(ARCH)
    assert stored is not None
    assert stored.top1 == pytest.approx(TOP1, abs=1e-3) and stored.top5 == pytest.approx(TOP5, abs=1e-3)
    assert stored.checkpoint_sha256 == file_sha256(weights)
    assert stored.dataset == "tinynet" and stored.source == "measured by mobilebench eval on tinynet"


def test_eval_updates_the_model_card(tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    from mobilebench.zoo.cards import get_card

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "redcard.toml").write_text(
        f'arch = "{ARCH}"\ninput_size = 64\nnum_classes = 6\ncheckpoint = "{weights}"\n'
    )
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(cards))
    data = make_folder(tmp_path / "imagenet")
    result = cli(
        "eval",
        "redcard",
        "--data",
        data,
        "--update-card",
        "--db",
        tmp_path / "r.sqlite",
        "--workers",
        "0",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    accuracy = get_card("redcard").accuracy
    assert accuracy.dataset == "imagenet" and accuracy.top1 == pytest.approx(TOP1, abs=1e-3)
    assert accuracy.source == "measured by mobilebench eval on imagenet"


def test_eval_refuses_what_it_cannot_measure(tmp_path: Path, weights: Path, cli) -> None:
    data = make_folder(tmp_path / "d")
    weights10 = tmp_path / "w10.pt"
    torch.save(MeanRed(10).state_dict(), weights10)
    common = ["--data", data, "--db", tmp_path / "r.sqlite", "--workers", "0", "--no-progress"]
    cases = {
        "no checkpoint": [ARCH, "--num-classes", "6"],
        "holds no EMA": [ARCH, "--checkpoint", str(weights), "--num-classes", "6", "--ema"],
        "does not fit": [ARCH, "--checkpoint", str(weights)],  # 1000 classes by default
        "has 6 classes but the model has 10 outputs": [ARCH, "--checkpoint", str(weights10), "--num-classes", "10"],
        "no 'test' split": [ARCH, "--checkpoint", str(weights), "--num-classes", "6", "--split", "test"],
    }
    for message, argv in cases.items():
        # A MobilebenchError becomes one "error: ..." line; anything else would escape main().
        result = cli("eval", *argv, *common)
        assert result.exit_code in (1, 2) and result.stderr.startswith("error: "), (message, result)
        assert message in result.stderr and result.stderr.count("\n") == 1, (message, result)
    assert _count_rows(tmp_path / "r.sqlite") == 0


def _count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with ResultsStore(db) as store:
        return len(store.accuracy_models())


def test_eval_maps_classes_by_name_for_mobilebench_checkpoints(tmp_path: Path) -> None:
    from mobilebench.train.evaluate import _label_map

    assert _label_map(["b", "c"], ["a", "b", "c"], 3, "x") == [1, 2]
    assert _label_map(["a", "b"], None, 2, "x") is None
    with pytest.raises(UsageError, match="not trained on: z"):
        _label_map(["z"], ["a"], 1, "x")


def test_eval_of_an_exported_program(tmp_path: Path, cli) -> None:
    """A ``.pt2`` program carries its weights and fixes its input (batch 1, 64x64)."""
    program = torch.export.export(MeanRed(6).eval(), (torch.randn(1, 3, 64, 64),))
    path = tmp_path / "meanred.pt2"
    torch.export.save(program, path)
    data = make_folder(tmp_path / "tinynet")
    result = cli(
        "eval",
        path,
        "--data",
        data,
        "--db",
        tmp_path / "r.sqlite",
        "--workers",
        "0",
        "--no-progress",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["top1"] == pytest.approx(TOP1, abs=1e-3) and row["top5"] == pytest.approx(TOP5, abs=1e-3)
    assert (row["model"], row["input_size"], row["checkpoint_sha256"]) == ("meanred", 64, file_sha256(path))
