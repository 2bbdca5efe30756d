"""Published key layouts: torchvision's MNASNet 1.0 and the official GhostNet code."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mobilebench.errors import MobilebenchError
from mobilebench.zoo import create_model, load_checkpoint

# torchvision's _stack(in, out, kernel, stride, expansion, repeats) calls for alpha 1.0.
TORCHVISION_STACKS = ((16, 24, 3, 2, 3, 3), (24, 40, 5, 2, 3, 3), (40, 80, 5, 2, 6, 3),
                      (80, 96, 3, 1, 6, 2), (96, 192, 5, 2, 6, 4), (192, 320, 3, 1, 6, 1))


def torchvision_mnasnet_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """torchvision's MNASNet.forward in eval mode, written from its definition, reading
    the weights by their torchvision key names."""

    def conv(x: torch.Tensor, name: str, stride: int = 1) -> torch.Tensor:
        weight = sd[f"{name}.weight"]
        groups = x.shape[1] // weight.shape[1]
        return F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)

    def bn(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"], training=False, eps=1e-5)

    x = F.relu(bn(conv(x, "layers.0", 2), "layers.1"))
    x = F.relu(bn(conv(x, "layers.3"), "layers.4"))
    x = bn(conv(x, "layers.6"), "layers.7")
    for i, (cin, cout, _k, stride, _t, repeats) in enumerate(TORCHVISION_STACKS):
        for j in range(repeats):
            p = f"layers.{8 + i}.{j}.layers"
            y = F.relu(bn(conv(x, f"{p}.0"), f"{p}.1"))
            y = F.relu(bn(conv(y, f"{p}.3", stride if j == 0 else 1), f"{p}.4"))
            y = bn(conv(y, f"{p}.6"), f"{p}.7")
            x = y + x if j > 0 else y  # the first block of a stack has no skip
    x = F.relu(bn(conv(x, "layers.14"), "layers.15"))
    return F.linear(x.mean([2, 3]), sd["classifier.1.weight"], sd["classifier.1.bias"])


def _shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_mnasnet1_0_keys_and_shapes_match_torchvision(layout: Callable) -> None:
    expected = layout("torchvision_mnasnet1_0.layout")
    assert _shapes(create_model("mnasnet1_0")) == expected
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    params = sum(math.prod(shape) for key, shape in expected if not key.endswith(buffers))
    assert params == 4_383_312  # torchvision's MNASNet1_0_Weights num_params


def test_mnasnet1_0_loads_torchvision_weights_and_computes_the_same(
    layout: Callable, foreign_state_dict: Callable, tmp_path: Path
) -> None:
    state = foreign_state_dict(layout("torchvision_mnasnet1_0.layout"), seed=1)
    path = tmp_path / "mnasnet1.0_top1_73.512-f206786ef8.pth"
    torch.save(state, path)
    model = create_model("mnasnet1_0", checkpoint=path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(x)
        reference = torchvision_mnasnet_forward(state, x)
    assert reference.abs().max() > 1e-2  # the check below is not comparing zeros
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)


def test_mnasnet1_0_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(5)
    trained = create_model("mnasnet1_0").eval()
    torch.save(trained.state_dict(), tmp_path / "ckpt.pth")
    torch.manual_seed(6)
    fresh = create_model("mnasnet1_0").eval()
    loaded = load_checkpoint(fresh, tmp_path / "ckpt.pth")
    assert loaded.wrapper_key is None
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(fresh(x), trained(x))


def test_ghostnet_keys_and_shapes_match_the_official_code(layout: Callable) -> None:
    expected = layout("ghostnet_official_1_0.layout")
    assert _shapes(create_model("ghostnet")) == expected


def test_ghostnet_loads_official_layout_weights(layout: Callable, foreign_state_dict: Callable,
                                                tmp_path: Path) -> None:
    state = foreign_state_dict(layout("ghostnet_official_1_0.layout"), seed=2)
    path = tmp_path / "state_dict_73.98.pth"
    torch.save(state, path)
    model = create_model("ghostnet", checkpoint=path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 224, 224))).all()


def test_ghostnet_130_refuses_the_1x_checkpoint(layout: Callable, foreign_state_dict: Callable,
                                                tmp_path: Path) -> None:
    path = tmp_path / "state_dict_73.98.pth"
    torch.save(foreign_state_dict(layout("ghostnet_official_1_0.layout")), path)
    with pytest.raises(MobilebenchError, match="shape mismatches"):
        create_model("ghostnet_130", checkpoint=path)
