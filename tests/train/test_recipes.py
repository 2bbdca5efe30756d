"""Recipes (the paper's values, overrides), the lr schedule, TF-style RMSProp, EMA."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mobilebench.errors import UsageError
from mobilebench.train import RECIPES, ModelEma, Recipe, build_recipe
from mobilebench.train.optim import LrSchedule, RMSpropTF, build_optimizer


def test_paper_values() -> None:
    imagenet, cifar = RECIPES["imagenet"], RECIPES["cifar100"]
    assert (imagenet.optimizer, imagenet.rmsprop_decay, imagenet.momentum, imagenet.rmsprop_eps) == (
        "rmsprop_tf",
        0.9,
        0.9,
        1e-3,
    )
    assert (imagenet.lr, imagenet.warmup_lr, imagenet.warmup_epochs) == (0.032, 1e-6, 3.0)
    assert (imagenet.lr_decay, imagenet.lr_decay_epochs, imagenet.ema_decay) == (0.97, 2.4, 0.99995)
    assert (imagenet.batch_size, imagenet.weight_decay, imagenet.bn_momentum) == (512, 1e-5, 0.01)
    assert (imagenet.input_size, imagenet.augment) == (224, "inception")
    assert (cifar.optimizer, cifar.lr, cifar.momentum, cifar.weight_decay) == ("sgd", 0.1, 0.9, 5e-4)
    assert (cifar.lr_milestones, cifar.lr_decay, cifar.epochs, cifar.augment) == ((60, 120, 160), 0.2, 200, "cifar")


def test_imagenet_schedule() -> None:
    schedule = LrSchedule(RECIPES["imagenet"], steps_per_epoch=100)
    assert schedule.lr_at(0, 0) == pytest.approx(1e-6)
    assert schedule.lr_at(1, 50) == pytest.approx(1e-6 + (0.032 - 1e-6) / 2)  # half-way through warm-up
    # The staircase counts from epoch 0: floor(3 / 2.4) = 1 decay when warm-up ends.
    assert schedule.lr_at(3, 0) == pytest.approx(0.032 * 0.97)
    assert schedule.lr_at(4, 79) == pytest.approx(0.032 * 0.97)
    assert schedule.lr_at(4, 80) == pytest.approx(0.032 * 0.97**2)  # epoch 4.8
    assert schedule.lr_at(349, 0) == pytest.approx(0.032 * 0.97 ** math.floor(349 / 2.4))


def test_cifar_schedule() -> None:
    schedule = LrSchedule(RECIPES["cifar100"], steps_per_epoch=391)
    assert [schedule.lr_at(e, 0) for e in (0, 59, 60, 119, 120, 160, 199)] == pytest.approx(
        [0.1, 0.1, 0.02, 0.02, 0.004, 0.0008, 0.0008]
    )
    assert schedule.lr_at(59, 390) == pytest.approx(0.1)


def test_rmsprop_tf_matches_the_tensorflow_update() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([p], lr=0.1, decay=0.9, momentum=0.9, eps=1e-3)
    ms, mom, value = [1.0, 1.0], [0.0, 0.0], [1.0, -2.0]  # TF starts the mean square at 1
    for grads in ([0.5, -1.0], [2.0, 0.25]):
        p.grad = torch.tensor(grads)
        opt.step()
        for i, g in enumerate(grads):
            ms[i] = 0.9 * ms[i] + 0.1 * g * g
            mom[i] = 0.9 * mom[i] + 0.1 * g / math.sqrt(ms[i] + 1e-3)  # eps inside the root
            value[i] -= mom[i]
    assert p.tolist() == pytest.approx(value, rel=1e-6)


def test_weight_decay_skips_biases_and_norms_in_the_imagenet_recipe() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decayed, plain = build_optimizer(model, RECIPES["imagenet"]).param_groups
    assert decayed["weight_decay"] == 1e-5 and plain["weight_decay"] == 0.0
    assert {p.ndim for p in decayed["params"]} == {2, 4} and {p.ndim for p in plain["params"]} == {1}
    (everything,) = build_optimizer(model, RECIPES["cifar100"]).param_groups
    assert everything["weight_decay"] == 5e-4 and len(everything["params"]) == 6


def test_overrides(tmp_path: Path) -> None:
    config = tmp_path / "r.toml"
    config.write_text('lr = 0.01\nlr_milestones = [10, 20]\naugment = "none"\n')
    recipe = build_recipe(
        "cifar100", config_file=config, sets=["lr=0.02", "amp=false", "loss=bias"], explicit={"epochs": 30, "lr": None}
    )
    assert (recipe.lr, recipe.lr_milestones, recipe.augment, recipe.amp, recipe.loss, recipe.epochs) == (
        0.02,
        (10, 20),
        "none",
        False,
        "bias",
        30,
    )
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    bad = {
        "unknown key .lrr.; did you mean .lr.": dict(sets=["lrr=1"]),
        "epochs must be an integer": dict(sets=["epochs=2.5"]),
        "amp must be true or false": dict(sets=["amp=1"]),
        "optimizer must be one of": dict(sets=["optimizer=adam"]),
        "lr_milestones must be increasing": dict(sets=["lr_milestones=[5, 2]"]),
        "--set expects key=value": dict(sets=["lr"]),
    }
    for message, kwargs in bad.items():
        with pytest.raises(UsageError, match=message):
            build_recipe("cifar100", **kwargs)
    config.write_text("[recipe]\nlr = 1\n")
    with pytest.raises(UsageError, match="flat key = value"):
        build_recipe("cifar100", config_file=config)
    with pytest.raises(UsageError, match="unknown recipe 'imagenet1k'"):
        build_recipe("imagenet1k")


def test_show_recipe_round_trips_through_config(tmp_path: Path, cli) -> None:
    shown = cli("train", "--arch", "skipnet_m", "--out", tmp_path, "--set", "epochs=7", "--show-recipe")
    assert shown.exit_code == 0, shown.output
    (tmp_path / "r.toml").write_text(shown.stdout)
    assert build_recipe("cifar100", config_file=tmp_path / "r.toml") == build_recipe("imagenet", sets=["epochs=7"])
    assert not (tmp_path / "last.pt").exists()


def test_cli_usage_errors(tmp_path: Path, cli) -> None:
    base = ("train", "--arch", "skipnet_m", "--out", tmp_path)
    for args, message in {
        ("train", "--arch", "skipnet_m"): "the following arguments are required: --out",
        (*base, "--recipe", "imagenet1k"): "argument --recipe: invalid choice: 'imagenet1k'",
        (*base, "--loss", "focal"): "argument --loss: invalid choice: 'focal'",
        (*base, "--workers", "-1"): "argument --workers: -1 is below the minimum 0",
        (*base, "--epochs", "two"): "argument --epochs: 'two' is not an integer",
        (*base, "--lr", "nan"): "argument --lr: 'nan' is not a finite number",
    }.items():
        result = cli(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    result = cli(*base, "--set", "lr")  # the library's check, after parsing
    assert result.exit_code == 2 and result.stderr.startswith("error: --set expects key=value"), result.stderr
    result = cli(*base)  # imagefolder data is not optional
    assert result.exit_code == 2 and result.stderr == "error: --data is required for --dataset imagefolder\n"
    assert list(tmp_path.iterdir()) == []


def test_ema_averages_parameters_and_buffers() -> None:
    model = nn.BatchNorm1d(2)
    ema = ModelEma(model, decay=0.75)
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.running_mean.fill_(4.0)
    model.num_batches_tracked.fill_(5)
    ema.update(model)
    assert ema.module.weight.tolist() == pytest.approx([1.5, 1.5])  # 0.75 * 1 + 0.25 * 3
    assert ema.module.running_mean.tolist() == pytest.approx([1.0, 1.0])
    assert ema.module.num_batches_tracked.item() == 5
    assert not ema.module.weight.requires_grad and not ema.module.training


def test_a_bad_value_in_a_config_file_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "r.toml"
    config.write_text('lr = 0.01\n# the schedule\nlr_milestones = ["ten"]\n')
    with pytest.raises(UsageError, match=r"r.toml:3: recipe lr_milestones must be a list of integers, got \['ten'\]"):
        build_recipe("cifar100", config_file=config)
