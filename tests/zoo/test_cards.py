"""Model cards: the shipped ones, validation of bad ones, the folder rule, accuracy updates."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from mobilebench import paths
from mobilebench.errors import UsageError
from mobilebench.zoo.cards import cards_dir, get_card, load_cards, update_card_accuracy
from mobilebench.zoo.resolve import resolve_model

SHIPPED_CARDS = paths.project_root() / "models"

MINIMAL = 'arch = "skipnet_xs"\n'


def test_shipped_cards():
    cards = load_cards(SHIPPED_CARDS)
    ours = {
        "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_large_125", "mobilenet_v3_small",
        "skipnet_l", "skipnet_m", "skipnet_s", "skipnet_xs",
    }
    assert ours <= set(cards)
    m = cards["skipnet_m"]
    assert (m.arch, m.input_size, m.num_classes, m.checkpoint) == ("skipnet_m", 224, 1000, None)
    assert (m.accuracy.top1, m.accuracy.top5, m.accuracy.dataset) == (76.2, 92.8, "imagenet")
    assert (m.paper.flops, m.paper.params) == (246e6, 5.5e6)
    assert "Bias Loss" in m.paper.source and m.path == SHIPPED_CARDS / "skipnet_m.toml"
    assert cards["skipnet_s"].paper.flops == 152e6
    assert cards["mobilenet_v2"].accuracy.top1 == 72.0
    assert cards["mobilenet_v3_large"].accuracy.top5 is None
    assert cards["mobilenet_v3_large_125"].paper.params == 7.5e6
    for card in (cards[name] for name in ours):
        assert card.name == card.arch
        assert card.accuracy.source and card.paper.source and card.description


def test_minimal_card_leaves_sizes_to_resolving(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text(MINIMAL)
    card = load_cards(tmp_path)["tiny"]
    assert (card.name, card.arch, card.input_size, card.num_classes) == ("tiny", "skipnet_xs", None, None)
    assert card.checkpoint is None and card.accuracy is None and card.paper is None and card.options == {}
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(tmp_path))
    resolved = resolve_model("tiny")
    assert (resolved.input_size, resolved.num_classes) == (224, 1000)


def test_checkpoint_is_relative_to_the_card(tmp_path):
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "mine.toml").write_text(MINIMAL + 'checkpoint = "../weights/mine.pth"\n')
    card = load_cards(tmp_path / "cards")["mine"]
    assert card.checkpoint == (tmp_path / "weights" / "mine.pth").resolve()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (MINIMAL + "colour = 3\n", 2, "unknown key 'colour'; known keys: accuracy, arch"),
        (MINIMAL + "inptu_size = 3\n", 2, "unknown key 'inptu_size'; did you mean 'input_size'?"),
        ('input_size = 224\n', None, "the card needs arch"),
        ('arch = "skipnet_mm"\n', 1, "unknown arch 'skipnet_mm'; did you mean 'skipnet_m'"),
        ('arch = 5\n', 1, "arch must be a string, got 5"),
        ('arch = ""\n', 1, "arch is empty"),
        (MINIMAL + "input_size = 16\n", 2, "input_size must be an integer >= 32, got 16"),
        (MINIMAL + 'input_size = "224"\n', 2, "input_size must be an integer >= 32, got '224'"),
        (MINIMAL + "num_classes = 0\n", 2, "num_classes must be an integer >= 1"),
        (MINIMAL + "[accuracy]\ndataset = 'imagenet'\ntop1 = 176.2\nsource = 'x'\n", 4,
         r"\[accuracy\] top1 must be a number in \[0, 100\], got 176.2"),
        (MINIMAL + "[accuracy]\ntop1 = 76.2\nsource = 'x'\n", 2, r"\[accuracy\] needs dataset"),
        (MINIMAL + "[accuracy]\ndataset = 'imagenet'\ntop1 = 76.2\nsource = 'x'\nepoch = 3\n", 6,
         r"unknown key 'epoch' in \[accuracy\]"),
        (MINIMAL + "[paper]\nflops = -1\nparams = 1e6\nsource = 'x'\n", 3, r"\[paper\] flops must be a number >= 1"),
        (MINIMAL + "[options]\ndepth = 3\n", 3, r"\[options\] depth not accepted by skipnet_xs"),
        (MINIMAL + "accuracy = 76.2\n", 2, "accuracy must be a table"),
        ("arch = skipnet_xs\n", None, "invalid TOML"),
    ],
)
def test_bad_cards_name_the_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        load_cards(tmp_path)
    assert str(info.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert "\n" not in str(info.value)


def test_cards_folder_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("MOBILEBENCH_MODELS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cards_dir() == paths.project_root() / "models"
    (tmp_path / "models").mkdir()
    assert cards_dir() == tmp_path / "models"
    monkeypatch.setenv("MOBILEBENCH_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert cards_dir() == tmp_path / "elsewhere"
    with pytest.raises(UsageError, match="does not exist"):
        load_cards()


def test_get_card(cards_folder):
    assert get_card("skipnet_l").arch == "skipnet_l"
    assert get_card("no_such_card") is None
    assert get_card("../models/skipnet_l") is None


def test_update_card_accuracy_rewrites_atomically(cards_folder):
    path = cards_folder / "skipnet_xs.toml"
    os.chmod(path, 0o640)
    card = update_card_accuracy("skipnet_xs", dataset="imagenet", top1=70.1, top5=89.25, source="mobilebench eval, run 7")
    assert (card.accuracy.top1, card.accuracy.top5, card.accuracy.source) == (70.1, 89.25, "mobilebench eval, run 7")
    data = tomllib.loads(path.read_text())
    assert data["arch"] == "skipnet_xs" and data["paper"]["flops"] == 81e6 and data["description"].startswith("SkipNet-XS")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in cards_folder.iterdir() if p.name.startswith(".")] == []

    card = update_card_accuracy("skipnet_xs", dataset="cifar100", top1=71.0, top5=None, source="x")
    assert card.accuracy.top5 is None and "top5" not in tomllib.loads(path.read_text())["accuracy"]


def test_update_card_accuracy_refuses_bad_values_without_touching_the_card(cards_folder):
    path = cards_folder / "skipnet_xs.toml"
    before = path.read_bytes()
    with pytest.raises(UsageError, match=r"top1 must be a number in \[0, 100\]"):
        update_card_accuracy("skipnet_xs", dataset="imagenet", top1=170.0, top5=None, source="x")
    with pytest.raises(UsageError, match="no model card named 'nope'"):
        update_card_accuracy("nope", dataset="imagenet", top1=70.0, top5=None, source="x")
    assert path.read_bytes() == before
    assert sorted(p.name for p in Path(cards_folder).iterdir()) == sorted(p.name for p in SHIPPED_CARDS.glob("*.toml"))
