"""Checkpoint loading: wrappers, prefixes, refusal of pickled code, clear mismatch errors."""

from __future__ import annotations

import pickle

import pytest
import torch

import mobilebench
from mobilebench.errors import MobilebenchError
from mobilebench.zoo import load_checkpoint


def build(name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mobilebench.create_model(name).eval()


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def trained():
    """A skipnet_xs whose weights differ from a fresh build (seed 1 vs seed 2)."""
    return build("skipnet_xs", seed=1)


WRAPPERS = [
    ("raw", lambda sd: sd),
    ("state_dict", lambda sd: {"state_dict": sd, "epoch": 3}),
    ("model", lambda sd: {"model": sd, "optimizer": {"lr": 0.1}}),
    ("net", lambda sd: {"net": sd}),
    ("model_ema", lambda sd: {"model_ema": sd}),
    ("state_dict_ema", lambda sd: {"state_dict_ema": sd, "arch": "skipnet_xs"}),
]


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize(("wrapper", "wrap"), WRAPPERS, ids=[w for w, _ in WRAPPERS])
def test_round_trip(tmp_path, trained, wrapper, wrap, prefix):
    state = {prefix + k: v for k, v in trained.state_dict().items()}
    path = tmp_path / "weights.pth"
    torch.save(wrap(state), path)
    target = build("skipnet_xs", seed=2)
    loaded = load_checkpoint(target, path)
    assert_same_weights(target, trained)
    assert loaded.wrapper_key == (None if wrapper == "raw" else wrapper)
    assert loaded.stripped_prefix is bool(prefix)
    assert len(loaded.sha256) == 64


def test_ema_weights_are_preferred_and_plain_on_request(tmp_path, trained):
    other = build("skipnet_xs", seed=3)
    path = tmp_path / "both.pth"
    torch.save({"state_dict": other.state_dict(), "state_dict_ema": trained.state_dict()}, path)
    target = build("skipnet_xs", seed=2)
    assert load_checkpoint(target, path).wrapper_key == "state_dict_ema"
    assert_same_weights(target, trained)
    assert load_checkpoint(target, path, prefer_ema=False).wrapper_key == "state_dict"
    assert_same_weights(target, other)


def test_create_model_with_checkpoint_and_missing_bn_counters(tmp_path, trained):
    state = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model = mobilebench.create_model("skipnet_xs", checkpoint=path).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained(x))


class _CreatesFile:
    """Unpickling this would open (create) a file: the marker of executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("container", ["torch.save", "pickle.dump"])
def test_pickle_with_code_is_refused_and_never_run(tmp_path, trained, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": trained.state_dict(), "hook": _CreatesFile(marker)}
    if container == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(_CreatesFile(marker), f, protocol=2)  # torch's own protocol
    assert not marker.exists()
    with pytest.raises(MobilebenchError, match="is not plain weights") as info:
        load_checkpoint(build("skipnet_xs", seed=2), path)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_protocol_0_pickle_calling_os_system_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(MobilebenchError, match=r"is not plain weights \(it references os.system\)"):
        load_checkpoint(build("skipnet_xs", seed=2), path)
    assert not marker.exists()


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path, trained):
    path = tmp_path / "xs.pth"
    torch.save(trained.state_dict(), path)
    with pytest.raises(MobilebenchError) as info:
        load_checkpoint(mobilebench.create_model("mobilenet_v3_small"), path)
    message = str(info.value)
    assert "\n" not in message
    assert "does not fit MobileNetV3" in message
    assert "missing keys (features.0.0.weight, features.0.1.weight" in message
    assert "unexpected keys (first_layer.0.weight, first_layer.1.weight" in message
    model_keys = mobilebench.create_model("mobilenet_v3_small").state_dict().keys()
    missing = [k for k in model_keys if k not in trained.state_dict() and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in trained.state_dict() if k not in model_keys]
    assert f": {len(missing)} missing keys (" in message
    assert f"; {len(unexpected)} unexpected keys (" in message
    assert "; 1 shape mismatch (classifier.0.weight: (1024, 480) vs model (1024, 576))" in message


def test_shape_mismatch_is_listed_with_counts(tmp_path):
    path = tmp_path / "s.pth"
    torch.save(build("skipnet_s", seed=1).state_dict(), path)
    with pytest.raises(MobilebenchError, match=r"\d+ shape mismatches \(first_layer\.0\.weight: \(16, 3, 3, 3\) vs model \(8, 3, 3, 3\)"):
        load_checkpoint(build("skipnet_xs", seed=2), path)


def test_num_classes_mismatch(tmp_path, trained):
    path = tmp_path / "xs.pth"
    torch.save(trained.state_dict(), path)
    with pytest.raises(MobilebenchError, match=r"2 shape mismatches \(classifier\.3\.weight: \(1000, 1024\) vs model \(10, 1024\)"):
        mobilebench.create_model("skipnet_xs", num_classes=10, checkpoint=path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a PyTorch weights file"),
        (b"just some text\n", r"is not a PyTorch weights file \(unrecognised content\)"),
        (b"PK\x03\x04broken zip", "is not a PyTorch weights file"),
        (b"\x80\x02garbage", r"is not a PyTorch weights file \(unsupported pickle opcode 103\)"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(MobilebenchError, match=message) as info:
        load_checkpoint(build("skipnet_xs", seed=2), path)
    assert "\n" not in str(info.value)


def test_missing_file_and_non_state_dict(tmp_path):
    with pytest.raises(MobilebenchError, match="does not exist"):
        load_checkpoint(build("skipnet_xs", seed=2), tmp_path / "nope.pth")
    path = tmp_path / "odd.pth"
    torch.save({"epoch": 3, "weights": [1, 2]}, path)
    with pytest.raises(MobilebenchError, match="holds no state_dict: its top-level keys are 'epoch', 'weights'"):
        load_checkpoint(build("skipnet_xs", seed=2), path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(MobilebenchError, match="holds a list, not a state_dict"):
        load_checkpoint(build("skipnet_xs", seed=2), path)
