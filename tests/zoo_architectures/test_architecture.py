"""GhostNet 1.3x, MnasNet-A1 and torchvision's MNASNet 1.0: structure and forward passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilebench.errors import UsageError
from mobilebench.zoo import create_model, list_models
from mobilebench.zoo.ghostnet import GhostBottleneck, GhostModule, GhostSqueezeExcite, hard_sigmoid
from mobilebench.zoo.blocks import InvertedResidual
from mobilebench.zoo.mnasnet import TorchvisionInvertedResidual

NEW_MODELS = ("ghostnet_130", "mnasnet_a1", "mnasnet1_0")
# name -> (feature channels, feature map side at 224)
FEATURES = {"ghostnet_130": 1248, "mnasnet_a1": 1280, "mnasnet1_0": 1280}


def test_registered() -> None:
    assert set(NEW_MODELS) | {"ghostnet"} <= set(list_models())


@pytest.fixture(scope="module")
def built() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {name: create_model(name).eval() for name in NEW_MODELS}


@pytest.mark.parametrize("name", NEW_MODELS)
@pytest.mark.parametrize("batch", [1, 2])
def test_forward_shapes_and_split(built: dict[str, nn.Module], name: str, batch: int) -> None:
    model = built[name]
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        split = model.forward_head(features)
    assert features.shape == (batch, FEATURES[name], 7, 7)
    assert model.num_features == FEATURES[name]
    assert logits.shape == (batch, 1000)
    assert torch.isfinite(logits).all()
    assert torch.equal(logits, split)
    # The last conv map ends in a ReLU in all three architectures.
    assert features.min() >= 0


def test_batch_items_are_independent(built: dict[str, nn.Module]) -> None:
    """Eval mode: a sample's logits do not depend on the rest of its batch."""
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    for name, model in built.items():
        with torch.no_grad():
            pair = model(x)
            single = model(x[1:])
        torch.testing.assert_close(pair[1:], single, rtol=1e-4, atol=1e-5, msg=name)


def test_num_classes_and_other_input_sizes() -> None:
    for name in NEW_MODELS:
        model = create_model(name, num_classes=10).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 160, 160)).shape == (1, 10)


def test_ghostnet_130_table() -> None:
    """Paper Table 1 at width 1.3: 16 G-bnecks, 7 with SE, 4 striding (plus the stem)."""
    model = create_model("ghostnet_130")
    blocks = [m for m in model.modules() if isinstance(m, GhostBottleneck)]
    assert len(blocks) == 16
    assert sum(b.se is not None for b in blocks) == 7
    assert [b.stride for b in blocks].count(2) == 4
    assert model.conv_stem.out_channels == 20  # round4(16 * 1.3)
    assert blocks[-1].ghost2.out_channels == 208  # round4(160 * 1.3)
    assert model.conv_head.in_channels == 1248 and model.conv_head.out_channels == 1280
    assert model.conv_head.bias is not None
    # SE squeeze widths: round4(hidden / 4); the first SE row: exp round4(72 * 1.3) = 92 -> 24.
    first_se = next(b.se for b in blocks if b.se is not None)
    assert (first_se.conv_reduce.in_channels, first_se.conv_reduce.out_channels) == (92, 24)


def test_ghost_module_halves_and_odd_widths() -> None:
    module = GhostModule(8, 6, relu=True).eval()
    assert module.primary_conv[0].out_channels == 3
    assert module.cheap_operation[0].groups == 3  # depthwise on the primary half
    x = torch.randn(1, 8, 5, 5)
    out = module(x)
    primary = module.primary_conv(x)
    assert torch.equal(out[:, :3], primary)
    assert torch.equal(out[:, 3:], module.cheap_operation(primary))
    # An odd width makes one cheap channel too many; it is cut off.
    assert GhostModule(8, 5, relu=False)(x).shape == (1, 5, 5, 5)


def test_ghost_se_gate_is_hard_sigmoid() -> None:
    x = torch.linspace(-5, 5, 101)
    torch.testing.assert_close(hard_sigmoid(x), nn.functional.hardsigmoid(x))
    se = GhostSqueezeExcite(8, 4).eval()
    x = torch.randn(2, 8, 3, 3)
    gate = nn.functional.hardsigmoid(se.conv_expand(torch.relu(se.conv_reduce(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(se(x), x * gate)


def test_mnasnet_a1_table() -> None:
    """Paper Figure 7(a): SepConv + 15 MBConvs; SE on the 40, 112 and 160 stages (8 blocks)."""
    model = create_model("mnasnet_a1")
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 1 + 2 + 3 + 4 + 2 + 3 + 1
    se_blocks = [b for b in blocks if any(isinstance(m, nn.Sigmoid) for m in b.modules())]
    assert len(se_blocks) == 3 + 2 + 3
    # SepConv: depthwise 3x3 then 1x1 to 16, no expansion and no residual.
    sepconv = blocks[0].block
    assert len(sepconv) == 2 and sepconv[0][0].groups == 32 and sepconv[1][0].out_channels == 16
    assert not blocks[0].use_residual
    # SE squeeze is a quarter of the block *input*: first SE block 24 -> 72 hidden, squeeze 6.
    se = next(m for m in se_blocks[0].modules() if hasattr(m, "fc1"))
    assert (se.fc1.in_channels, se.fc1.out_channels) == (72, 6)
    strides = [b.block[1 if len(b.block) > 2 else 0][0].stride[0] for b in blocks]
    assert strides.count(2) == 4
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)


def test_mnasnet1_0_blocks_and_norm() -> None:
    model = create_model("mnasnet1_0")
    blocks = [m for m in model.modules() if isinstance(m, TorchvisionInvertedResidual)]
    assert len(blocks) == 3 + 3 + 3 + 2 + 4 + 1
    assert sum(b.apply_residual for b in blocks) == 10  # every block but each stack's first
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.momentum == pytest.approx(1 - 0.9997) and bn.eps == 1e-5


def test_init_follows_references() -> None:
    torch.manual_seed(0)
    tv = create_model("mnasnet1_0")
    # torchvision: conv He-normal fan-out: std sqrt(2 / (k*k*out)).
    stem = tv.layers[0].weight
    assert stem.std().item() == pytest.approx((2 / (9 * 32)) ** 0.5, rel=0.15)
    a1 = create_model("mnasnet_a1")
    # TF reference: a depthwise conv's fan-out is k*k, so std sqrt(2 / 9) for 3x3.
    dw = a1.features[1].block[0][0].weight
    assert dw.std().item() == pytest.approx((2 / 9) ** 0.5, rel=0.15)
    bound = 1 / 1000**0.5
    assert a1.classifier[1].weight.abs().max().item() <= bound


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="width_mult"):
        create_model("mnasnet_a1", width_mult=-1)
    with pytest.raises(UsageError, match="no option"):
        create_model("ghostnet_130", width_mult=1.0)
    with pytest.raises(UsageError, match="dropout"):
        create_model("mnasnet1_0", dropout=1.5)
