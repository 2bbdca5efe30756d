"""Every architecture this area defines: shapes, parameter counts, forward, torch.export."""

from __future__ import annotations

import pytest
import torch

import mobilebench
from mobilebench.errors import MobilebenchError
from mobilebench.zoo.blocks import make_divisible

# name -> (parameters, feature channels). SkipNet counts are the authors' architecture's
# (shared/reference/skipnet.md); MobileNet counts are torchvision's published models'.
ARCHITECTURES = {
    "mobilenet_v3_large": (5_483_032, 960),
    "mobilenet_v3_large_125": (7_460_424, 1200),
    "mobilenet_v3_small": (2_542_856, 576),
    "mobilenet_v2": (3_504_872, 1280),
    "skipnet_xs": (2_332_584, 480),
    "skipnet_s": (3_587_416, 720),
    "skipnet_m": (5_532_352, 960),
    "skipnet_l": (7_127_384, 1104),
}
# Paper parameter counts (Bias Loss Table 1) that the SkipNets must match within 2%.
SKIPNET_PAPER_PARAMS = {"skipnet_xs": 2.3e6, "skipnet_s": 3.6e6, "skipnet_m": 5.5e6, "skipnet_l": 7.1e6}


def test_every_architecture_is_registered():
    assert set(ARCHITECTURES) <= set(mobilebench.list_models())


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_params_features_and_forward_at_batch_1_and_2(name):
    params, channels = ARCHITECTURES[name]
    model = mobilebench.create_model(name).eval()
    assert sum(p.numel() for p in model.parameters()) == params
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, channels, 7, 7)
        logits = model(x)
        assert logits.shape == (2, 1000)
        torch.testing.assert_close(model.forward_head(features), logits)
        single = model(x[:1])
    assert single.shape == (1, 1000)
    torch.testing.assert_close(single, logits[:1], rtol=1e-4, atol=1e-5)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(SKIPNET_PAPER_PARAMS))
def test_skipnet_params_within_two_percent_of_paper(name):
    params = sum(p.numel() for p in mobilebench.create_model(name).parameters())
    assert abs(params - SKIPNET_PAPER_PARAMS[name]) / SKIPNET_PAPER_PARAMS[name] < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_torch_export_non_strict_matches_eager(name):
    model = mobilebench.create_model(name).eval()
    x = torch.randn(1, 3, 224, 224)
    program = torch.export.export(model, (x,), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("conv2d" in t for t in targets)


@pytest.mark.parametrize(("name", "size"), [("skipnet_xs", 160), ("skipnet_xs", 256), ("mobilenet_v3_small", 96)])
def test_other_input_sizes(name, size):
    model = mobilebench.create_model(name).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, size, size))
    assert features.shape[-1] == size // 32 + (size % 32 > 0)


def test_skip_blocks_are_added_to_stage_outputs():
    """Zeroing a skip block's last BN removes its contribution; it must matter otherwise."""
    model = mobilebench.create_model("skipnet_xs").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        for m in (model.skip1.core_block[7], model.skip2.core_block[7]):
            m.weight.zero_()
            m.bias.zero_()
        after = model(x)
    assert not torch.allclose(before, after)


def test_width_multiplier_and_num_classes_options():
    small = mobilebench.create_model("mobilenet_v3_small", width_mult=0.75, num_classes=10)
    assert small.classifier[-1].out_features == 10
    assert small.features[0][0].out_channels == make_divisible(16 * 0.75)
    assert sum(p.numel() for p in small.parameters()) < 2_542_856


@pytest.mark.parametrize(
    ("value", "rounded"), [(16 * 0.5, 8), (16 * 0.75, 16), (40 * 1.15, 48), (1280 * 1.15, 1472), (18, 24), (3, 8)]
)
def test_make_divisible(value, rounded):
    assert make_divisible(value) == rounded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width_mult": -1.0}, "width_mult must be a positive number"),
        ({"width_mult": "wide"}, "width_mult must be a positive number"),
        ({"depth": 2}, "has no option 'depth'"),
        ({"num_classes": 0}, "num_classes must be a positive integer"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(MobilebenchError, match=message) as info:
        mobilebench.create_model("mobilenet_v3_small", **kwargs)
    assert "\n" not in str(info.value)
