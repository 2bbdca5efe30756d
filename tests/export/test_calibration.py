"""int8 calibration inputs: real images preprocessed as the model was trained, a fixed
sample, synthetic inputs only when asked (and labelled), clear errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.export import ExportOptions, synthetic_calibration
from mobilebench.export.calibration import HashingInputs
from mobilebench.export.pipeline import key_material, plan_calibration
from mobilebench.train.calibration import CALIBRATION_IMAGES, calibration_for
from mobilebench.train.transforms import IMAGENET_MEAN, IMAGENET_STD
from mobilebench.zoo.resolve import resolve_model


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(tmp_path / "no_cards"))
    (tmp_path / "no_cards").mkdir()
    return resolve_model("mobilenet_v3_small", input_size=64)


def test_synthetic_inputs_only_when_asked_and_labelled(small) -> None:
    calibration = calibration_for(small, "3")
    assert calibration.synthetic and calibration.count == 3 and "synthetic" in calibration.label
    inputs = list(calibration.load())
    assert [tuple(x.shape) for x in inputs] == [(1, 3, 64, 64)] * 3
    assert calibration.key == synthetic_calibration((1, 3, 64, 64), 3).key
    # Nothing asked: nothing chosen here; the exporter gives a random-init model
    # synthetic inputs, and refuses a model with weights.
    assert calibration_for(small, None) is None
    assert plan_calibration(small, ExportOptions(dtype="int8")).synthetic
    with pytest.raises(UsageError, match="--calibration N needs at least 1"):
        calibration_for(small, "0")


def test_a_model_with_weights_needs_calibration_data(small, tmp_path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(small.build().state_dict(), path)
    trained = resolve_model(str(path), arch="mobilenet_v3_small", input_size=64)
    with pytest.raises(UsageError, match="int8 export of weights needs calibration inputs"):
        plan_calibration(trained, ExportOptions(dtype="int8"))


def test_a_folder_of_images_is_sampled_cropped_and_normalised(small, tmp_path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    color = (200, 30, 90)
    Image.new("RGB", (300, 200), color).save(folder / "b.png")
    Image.new("L", (64, 96), 128).save(folder / "a.JPG")
    Image.new("RGB", (50, 50), (0, 0, 0)).save(folder / "sub" / "c.bmp")
    (folder / "notes.txt").write_text("not an image")
    calibration = calibration_for(small, str(folder))
    assert not calibration.synthetic and calibration.count == 3 and calibration.record["images_found"] == 3
    tensors = list(calibration.load())
    assert [tuple(x.shape) for x in tensors] == [(1, 3, 64, 64)] * 3  # grayscale -> RGB, any size -> 64x64
    expected = [(c / 255 - m) / s for c, m, s in zip(color, IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    assert torch.allclose(tensors[1].mean(dim=(0, 2, 3)), torch.tensor(expected), atol=1e-3)  # b.png
    # The key follows the images' content.
    before = calibration.key
    Image.new("RGB", (300, 200), (1, 2, 3)).save(folder / "b.png")
    assert calibration_for(small, str(folder)).key != before


def test_the_digits_training_split_is_a_fixed_sample(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(tmp_path))
    resolved = resolve_model("mobilenet_v3_small", input_size=32, num_classes=10)
    calibration = calibration_for(resolved, "digits")
    assert calibration.count == CALIBRATION_IMAGES and calibration.key["dataset"] == "digits"
    first, second = HashingInputs(calibration), HashingInputs(calibration)
    a, b = list(first), list(second)
    assert len(a) == CALIBRATION_IMAGES and a[0].shape == (1, 3, 32, 32)
    assert first.sha256 == second.sha256 and torch.equal(a[5], b[5])
    # digits' own normalisation (mean 0.5, std 0.5): the background is -1.
    assert float(torch.stack(a).min()) == pytest.approx(-1.0)
    material = key_material(resolved, ExportOptions(dtype="int8", calibration=calibration), calibration)
    assert material["export"]["calibration"] == calibration.key


def test_errors_are_one_line(small, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no images") as info:
        calibration_for(small, str(tmp_path / "empty"))
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match=r"not a dataset .* \(no such folder\)"):
        calibration_for(small, str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="cifar100 needs the dataset's location"):
        calibration_for(small, "cifar100")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.jpg").write_bytes(b"not really a jpeg")
    with pytest.raises(MobilebenchError, match="broken.jpg"):
        list(calibration_for(small, str(bad)).load())
    with pytest.raises(UsageError, match="calibration only applies to int8"):
        ExportOptions(calibration=synthetic_calibration((1, 3, 8, 8), 1))
