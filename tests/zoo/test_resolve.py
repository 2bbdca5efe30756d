"""resolve_model: cards, registry names, checkpoint files, errors; deterministic builds."""

from __future__ import annotations

import pytest
import torch

import mobilebench
from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.files import file_sha256
from mobilebench.zoo.resolve import ZooModelRef, resolve_model


def test_card(cards_folder):
    resolved = resolve_model("skipnet_m")
    assert (resolved.name, resolved.arch, resolved.kind, resolved.input_size) == ("skipnet_m", "skipnet_m", "zoo", 224)
    assert isinstance(resolved, ZooModelRef) and resolved.random_init and resolved.weights_label() == "random-init"
    assert resolved.card.paper.flops == 246e6
    assert resolved.checkpoint is None and resolved.checkpoint_sha256 is None
    assert resolve_model("skipnet_m", input_size=256).input_size == 256


def test_registry_name_without_card(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(tmp_path))
    resolved = resolve_model("mobilenet_v3_small", num_classes=10)
    assert resolved.card is None and resolved.num_classes == 10 and resolved.input_size == 224


def test_card_with_options_and_checkpoint(cards_folder):
    torch.manual_seed(5)
    trained = mobilebench.create_model("mobilenet_v3_small", width_mult=0.5, num_classes=10)
    (cards_folder / "weights").mkdir()
    torch.save({"state_dict": trained.state_dict()}, cards_folder / "weights" / "small.pth")
    (cards_folder / "small_cifar.toml").write_text(
        'arch = "mobilenet_v3_small"\nnum_classes = 10\ninput_size = 64\ncheckpoint = "weights/small.pth"\n'
        "[options]\nwidth_mult = 0.5\n"
    )
    resolved = resolve_model("small_cifar")
    assert resolved.checkpoint == (cards_folder / "weights" / "small.pth").resolve()
    assert resolved.checkpoint_sha256 == file_sha256(resolved.checkpoint)
    model = resolved.build()
    assert not model.training
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    assert model(resolved.example_input()).shape == (1, 10)

    (cards_folder / "weights" / "small.pth").unlink()
    with pytest.raises(UsageError, match=r"checkpoint of model card .*small_cifar.toml .*small.pth does not exist"):
        resolve_model("small_cifar")


def test_checkpoint_file_with_arch(tmp_path, cards_folder):
    torch.manual_seed(4)
    trained = mobilebench.create_model("skipnet_xs")
    path = tmp_path / "skipblocknet-xs.pth"
    torch.save(trained.state_dict(), path)
    resolved = resolve_model(str(path), arch="skipnet_xs")
    assert (resolved.name, resolved.arch, resolved.card) == ("skipblocknet-xs", "skipnet_xs", None)
    assert resolved.checkpoint_sha256 == file_sha256(path)
    built = resolved.build()
    assert torch.equal(built.state_dict()["classifier.3.weight"], trained.state_dict()["classifier.3.weight"])

    with pytest.raises(UsageError, match="not a mobilebench training checkpoint, so it does not say which architecture"):
        resolve_model(str(path))
    with pytest.raises(UsageError, match="model card skipnet_m is a skipnet_m, not skipnet_xs"):
        resolve_model("skipnet_m", arch="skipnet_xs")

    # The file changes between resolve and build: refused, not silently different weights.
    torch.save(mobilebench.create_model("skipnet_xs").state_dict(), path)
    with pytest.raises(MobilebenchError, match="changed since it was resolved"):
        resolved.build()


def test_build_is_bit_identical_and_leaves_the_global_rng_alone(cards_folder):
    resolved = resolve_model("skipnet_xs")
    state = torch.get_rng_state()
    a, b = resolved.build(), resolved.build()
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert torch.equal(resolved.example_input(2), resolved.example_input(2))


def test_unknown_name_lists_close_matches_from_cards_and_registry(cards_folder):
    (cards_folder / "my_skipnet.toml").write_text('arch = "skipnet_m"\n')
    with pytest.raises(UsageError, match=r"unknown model 'my_skipnt' .*did you mean 'my_skipnet'") as info:
        resolve_model("my_skipnt")
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="did you mean 'mobilenet_v3_small'"):
        resolve_model("mobilenet_v3_smal")
    with pytest.raises(UsageError, match="unknown architecture 'skipnet_q'"):
        resolve_model("skipnet_m", arch="skipnet_q")


@pytest.mark.parametrize(
    ("name", "size", "message"),
    [
        ("skipnet_m", 200, "input size 200 does not suit skipnet_m: it needs a multiple of 16 \\(e.g. 192 or 208\\)"),
        ("skipnet_xs", 16, "input size 16 is out of range: use 32 to"),
        ("mobilenet_v3_large", 0, "out of range"),
        ("mobilenet_v3_large", 10_000, "out of range"),
    ],
)
def test_bad_input_sizes(cards_folder, name, size, message):
    with pytest.raises(UsageError, match=message):
        resolve_model(name, input_size=size)


def test_mobilenet_accepts_any_size_from_32(cards_folder):
    assert resolve_model("mobilenet_v3_large", input_size=200).input_size == 200


def _training_checkpoint(path, *, arch="mobilenet_v3_small", options=None, classes=10, size=32, ema=False):
    """A checkpoint laid out as `mobilebench train` writes it (its self-description)."""
    from mobilebench.zoo.checkpoint import TRAINING_FORMAT

    options = {"width_mult": 0.5} if options is None else options
    torch.manual_seed(3)
    model = mobilebench.create_model(arch, num_classes=classes, **options)
    content = {
        "format": TRAINING_FORMAT,
        "arch": arch,
        "arch_options": options,
        "num_classes": classes,
        "classes": [str(c) for c in range(classes)],
        "input_size": size,
        "dataset": {"kind": "digits", "root": None},
        "model": model.state_dict(),
    }
    if ema:
        content["model_ema"] = model.state_dict()
    torch.save(content, path)
    return model


def test_a_training_checkpoint_describes_itself(tmp_path, cards_folder):
    path = tmp_path / "best.pt"
    trained = _training_checkpoint(path)
    resolved = resolve_model(str(path))
    assert isinstance(resolved, ZooModelRef) and resolved.kind == "zoo"
    assert (resolved.name, resolved.arch, resolved.options) == ("best", "mobilenet_v3_small", {"width_mult": 0.5})
    assert (resolved.num_classes, resolved.input_size, resolved.warnings) == (10, 32, ())
    assert resolved.training.dataset_kind == "digits" and resolved.training.classes == tuple("0123456789")
    assert resolved.checkpoint_sha256 == file_sha256(path) and not resolved.random_init
    built = resolved.build()
    assert torch.equal(built.classifier[-1].weight, trained.classifier[-1].weight)
    # Flags that agree are fine; --arch and --num-classes that contradict it are errors.
    assert resolve_model(str(path), arch="mobilenet_v3_small", num_classes=10).num_classes == 10
    with pytest.raises(UsageError, match=r"best.pt has 10 classes \(trained on digits\); --num-classes says 1000"):
        resolve_model(str(path), num_classes=1000)
    with pytest.raises(UsageError, match="holds a trained mobilenet_v3_small, not skipnet_xs"):
        resolve_model(str(path), arch="skipnet_xs")
    # Another input size is allowed (latency at another resolution) but said.
    other = resolve_model(str(path), input_size=64)
    assert other.input_size == 64
    assert other.warnings == ("best.pt was trained at 32x32 pixels; --input-size asks for 64",)


def test_a_card_or_registry_name_with_a_training_checkpoint(tmp_path, cards_folder):
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    _training_checkpoint(path)
    resolved = resolve_model("mobilenet_v3_small", checkpoint=path)
    assert (resolved.name, resolved.num_classes, resolved.input_size) == ("mobilenet_v3_small", 10, 32)
    with pytest.raises(UsageError, match="holds a trained mobilenet_v3_small, not skipnet_xs"):
        resolve_model("skipnet_xs", checkpoint=path)
    (cards_folder / "digits_small.toml").write_text(
        'arch = "mobilenet_v3_small"\ncheckpoint = "../run/best.pt"\n[options]\nwidth_mult = 0.75\n'
    )
    with pytest.raises(UsageError, match="was trained with width_mult=0.5; the model card says width_mult=0.75"):
        resolve_model("digits_small")
    (cards_folder / "digits_small.toml").write_text(
        'arch = "mobilenet_v3_small"\nnum_classes = 100\ncheckpoint = "../run/best.pt"\n'
    )
    with pytest.raises(UsageError, match=r"has 10 classes .*model card .*digits_small.toml says 100"):
        resolve_model("digits_small")
