"""Published key layouts and independent reference forwards.

The expected layouts are written down from torchvision's published state_dicts
(mobilenet_v3_large/small, mobilenet_v2) and from the SkipNet authors' model
(lusinlu/bias-loss-skipblocknet): per block the channel counts, expanded into key names
with torchvision's / the authors' naming. The reference forwards below are plain
``torch.nn.functional`` code reading a state_dict by those names; they do not use any
zoo module.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mobilebench


def bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


# --- torchvision MobileNetV3 -------------------------------------------------------
# features.i for i = 1..: (in, expanded, out, kernel, SE squeeze or None), as in
# torchvision's mobilenet_v3_large-8738ca79.pth / mobilenet_v3_small-047dcff4.pth.
TV_V3_LARGE = [
    (16, 16, 16, 3, None), (16, 64, 24, 3, None), (24, 72, 24, 3, None), (24, 72, 40, 5, 24),
    (40, 120, 40, 5, 32), (40, 120, 40, 5, 32), (40, 240, 80, 3, None), (80, 200, 80, 3, None),
    (80, 184, 80, 3, None), (80, 184, 80, 3, None), (80, 480, 112, 3, 120), (112, 672, 112, 3, 168),
    (112, 672, 160, 5, 168), (160, 960, 160, 5, 240), (160, 960, 160, 5, 240),
]
TV_V3_SMALL = [
    (16, 16, 16, 3, 8), (16, 72, 24, 3, None), (24, 88, 24, 3, None), (24, 96, 40, 5, 24),
    (40, 240, 40, 5, 64), (40, 240, 40, 5, 64), (40, 120, 48, 5, 32), (48, 144, 48, 5, 40),
    (48, 288, 96, 5, 72), (96, 576, 96, 5, 144), (96, 576, 96, 5, 144),
]


def torchvision_v3_layout(blocks, last_conv: int, hidden: int) -> dict[str, tuple[int, ...]]:
    keys = {"features.0.0.weight": (16, 3, 3, 3), **bn("features.0.1", 16)}
    for i, (cin, exp, out, k, se) in enumerate(blocks, start=1):
        p, j = f"features.{i}.block", 0
        if exp != cin:
            keys |= {f"{p}.0.0.weight": (exp, cin, 1, 1), **bn(f"{p}.0.1", exp)}
            j = 1
        keys |= {f"{p}.{j}.0.weight": (exp, 1, k, k), **bn(f"{p}.{j}.1", exp)}
        j += 1
        if se:
            keys |= {
                f"{p}.{j}.fc1.weight": (se, exp, 1, 1), f"{p}.{j}.fc1.bias": (se,),
                f"{p}.{j}.fc2.weight": (exp, se, 1, 1), f"{p}.{j}.fc2.bias": (exp,),
            }
            j += 1
        keys |= {f"{p}.{j}.0.weight": (out, exp, 1, 1), **bn(f"{p}.{j}.1", out)}
    n = len(blocks) + 1
    keys |= {f"features.{n}.0.weight": (last_conv, blocks[-1][2], 1, 1), **bn(f"features.{n}.1", last_conv)}
    keys |= {
        "classifier.0.weight": (hidden, last_conv), "classifier.0.bias": (hidden,),
        "classifier.3.weight": (1000, hidden), "classifier.3.bias": (1000,),
    }
    return keys


# --- torchvision MobileNetV2 -------------------------------------------------------
# features.i for i = 1..17: (in, out); block 1 has expansion 1, the others 6.
TV_V2 = [(32, 16), (16, 24), (24, 24), (24, 32), (32, 32), (32, 32), (32, 64), (64, 64), (64, 64),
         (64, 64), (64, 96), (96, 96), (96, 96), (96, 160), (160, 160), (160, 160), (160, 320)]


def torchvision_v2_layout() -> dict[str, tuple[int, ...]]:
    keys = {"features.0.0.weight": (32, 3, 3, 3), **bn("features.0.1", 32)}
    for i, (cin, out) in enumerate(TV_V2, start=1):
        p = f"features.{i}.conv"
        if i == 1:
            keys |= {f"{p}.0.0.weight": (32, 1, 3, 3), **bn(f"{p}.0.1", 32),
                     f"{p}.1.weight": (16, 32, 1, 1), **bn(f"{p}.2", 16)}
            continue
        h = cin * 6
        keys |= {f"{p}.0.0.weight": (h, cin, 1, 1), **bn(f"{p}.0.1", h),
                 f"{p}.1.0.weight": (h, 1, 3, 3), **bn(f"{p}.1.1", h),
                 f"{p}.2.weight": (out, h, 1, 1), **bn(f"{p}.3", out)}
    keys |= {"features.18.0.weight": (1280, 320, 1, 1), **bn("features.18.1", 1280),
             "classifier.1.weight": (1000, 1280), "classifier.1.bias": (1000,)}
    return keys


# --- SkipNet-M, the authors' layout ------------------------------------------------
# blocks.S.J: (in, hidden, out, kernel, SE squeeze or None) for skipblocknet-m.pth.
AUTHORS_M_STAGES = [
    [(16, 64, 24, 3, None), (24, 72, 24, 3, None), (24, 72, 40, 5, 24), (40, 120, 40, 5, 32), (40, 240, 40, 5, 64)],
    [(40, 240, 80, 3, None), (80, 200, 80, 3, None), (80, 184, 80, 3, None), (80, 184, 80, 3, None)],
    [(80, 480, 112, 3, 120), (112, 672, 112, 3, 168)],
    [(112, 672, 160, 5, 168), (160, 960, 160, 5, 240), (160, 960, 160, 5, 240)],
]
# skip1/skip2: (in, hidden, out, kernel); pooled to 28x28 and 14x14 at 224.
AUTHORS_M_SKIPS = {"skip1": (16, 96, 40, 5), "skip2": (16, 40, 80, 3)}


def authors_ir(p: str, cin: int, h: int, out: int, k: int, se: int | None) -> dict[str, tuple[int, ...]]:
    keys = {f"{p}.conv.0.weight": (h, cin, 1, 1), **bn(f"{p}.conv.1", h),
            f"{p}.conv.3.weight": (h, 1, k, k), **bn(f"{p}.conv.4", h)}
    if se:
        keys |= {f"{p}.conv.6.fc.0.weight": (se, h), f"{p}.conv.6.fc.0.bias": (se,),
                 f"{p}.conv.6.fc.2.weight": (h, se), f"{p}.conv.6.fc.2.bias": (h,)}
    return keys | {f"{p}.conv.7.weight": (out, h, 1, 1), **bn(f"{p}.conv.8", out)}


def authors_skipnet_m_layout() -> dict[str, tuple[int, ...]]:
    keys = {"first_layer.0.weight": (16, 3, 3, 3), **bn("first_layer.1", 16)}
    keys |= authors_ir("base_block", 16, 16, 16, 3, None)
    for s, stage in enumerate(AUTHORS_M_STAGES):
        for j, row in enumerate(stage):
            keys |= authors_ir(f"blocks.{s}.{j}", *row)
    for name, (cin, h, out, k) in AUTHORS_M_SKIPS.items():
        p = f"{name}.core_block"
        keys |= {f"{p}.0.weight": (h, cin, 1, 1), **bn(f"{p}.1", h), f"{p}.3.weight": (h, 1, k, k),
                 **bn(f"{p}.4", h), f"{p}.6.weight": (out, h, 1, 1), **bn(f"{p}.7", out)}
    keys |= {"conv.0.weight": (960, 160, 1, 1), **bn("conv.1", 960),
             "classifier.0.weight": (1280, 960), "classifier.0.bias": (1280,),
             "classifier.3.weight": (1000, 1280), "classifier.3.bias": (1000,)}
    return keys


def layout_of(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    ("name", "expected", "params"),
    [
        ("mobilenet_v3_large", lambda: torchvision_v3_layout(TV_V3_LARGE, 960, 1280), 5_483_032),
        ("mobilenet_v3_small", lambda: torchvision_v3_layout(TV_V3_SMALL, 576, 1024), 2_542_856),
        ("mobilenet_v2", torchvision_v2_layout, 3_504_872),
        ("skipnet_m", authors_skipnet_m_layout, 5_532_352),
    ],
)
def test_state_dict_layout_matches_published_weights(name, expected, params):
    model = mobilebench.create_model(name)
    want = expected()
    got = layout_of(model)
    assert list(got) == list(want)  # names, and the order state_dicts are written in
    assert got == want  # shapes
    assert sum(p.numel() for p in model.parameters()) == params


def test_spot_keys_of_torchvision_mobilenet_v3_large():
    got = layout_of(mobilebench.create_model("mobilenet_v3_large"))
    assert got["features.0.0.weight"] == (16, 3, 3, 3)
    assert got["features.4.block.2.fc1.weight"] == (24, 72, 1, 1)
    assert got["features.16.0.weight"] == (960, 160, 1, 1)
    assert got["classifier.3.weight"] == (1000, 1280)


# --- reference forwards ------------------------------------------------------------


def randomise_bn(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics, so eps and the running stats matter."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def h_sigmoid(x):
    return F.relu6(x + 3) / 6


def h_swish(x):
    return x * h_sigmoid(x)


def ref_bn(sd, p, x, eps):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        training=False, eps=eps)


def ref_conv_bn(sd, conv, norm, x, *, stride=1, groups=1, eps):
    w = sd[f"{conv}.weight"]
    x = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
    return ref_bn(sd, norm, x, eps)


def reference_mobilenet_v3_large(sd, x):
    """torchvision's MobileNetV3-Large forward, functionally (BN eps 0.001)."""
    eps = 0.001
    acts = ["RE"] * 6 + ["HS"] * 9
    strides = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1]
    x = h_swish(ref_conv_bn(sd, "features.0.0", "features.0.1", x, stride=2, eps=eps))
    for i, ((cin, exp, out, k, se), act, s) in enumerate(zip(TV_V3_LARGE, acts, strides), start=1):
        f = F.relu if act == "RE" else h_swish
        p, j, y = f"features.{i}.block", 0, x
        if exp != cin:
            y = f(ref_conv_bn(sd, f"{p}.0.0", f"{p}.0.1", y, eps=eps))
            j = 1
        y = f(ref_conv_bn(sd, f"{p}.{j}.0", f"{p}.{j}.1", y, stride=s, groups=exp, eps=eps))
        j += 1
        if se:
            z = F.adaptive_avg_pool2d(y, 1)
            z = F.relu(F.conv2d(z, sd[f"{p}.{j}.fc1.weight"], sd[f"{p}.{j}.fc1.bias"]))
            y = y * h_sigmoid(F.conv2d(z, sd[f"{p}.{j}.fc2.weight"], sd[f"{p}.{j}.fc2.bias"]))
            j += 1
        y = ref_conv_bn(sd, f"{p}.{j}.0", f"{p}.{j}.1", y, eps=eps)
        x = x + y if s == 1 and cin == out else y
    x = h_swish(ref_conv_bn(sd, "features.16.0", "features.16.1", x, eps=eps))
    x = x.mean((2, 3))
    x = h_swish(F.linear(x, sd["classifier.0.weight"], sd["classifier.0.bias"]))
    return F.linear(x, sd["classifier.3.weight"], sd["classifier.3.bias"])


def reference_skipnet_m(sd, x):
    """The authors' SkipblockNet forward (mode large, width 1.0), functionally (eps 1e-5)."""
    eps = 1e-5
    acts = [["RE"] * 4 + ["HS"], ["HS"] * 4, ["HS"] * 2, ["HS"] * 3]
    strides = [[2, 1, 2, 1, 1], [2, 1, 1, 1], [1, 1], [2, 1, 1]]

    def ir(p, y, cin, h, out, k, se, act, s):
        f = F.relu if act == "RE" else h_swish
        z = f(ref_conv_bn(sd, f"{p}.conv.0", f"{p}.conv.1", y, eps=eps))
        z = f(ref_conv_bn(sd, f"{p}.conv.3", f"{p}.conv.4", z, stride=s, groups=h, eps=eps))
        if se:
            a = z.mean((2, 3))
            a = F.relu(F.linear(a, sd[f"{p}.conv.6.fc.0.weight"], sd[f"{p}.conv.6.fc.0.bias"]))
            z = z * h_sigmoid(F.linear(a, sd[f"{p}.conv.6.fc.2.weight"], sd[f"{p}.conv.6.fc.2.bias"]))[:, :, None, None]
        z = ref_conv_bn(sd, f"{p}.conv.7", f"{p}.conv.8", z, eps=eps)
        return y + z if s == 1 and cin == out else z

    def skip(name, y, size):
        p = f"{name}.core_block"
        h = AUTHORS_M_SKIPS[name][1]
        y = F.adaptive_avg_pool2d(y, size)
        y = F.relu(ref_conv_bn(sd, f"{p}.0", f"{p}.1", y, eps=eps))
        y = F.relu(ref_conv_bn(sd, f"{p}.3", f"{p}.4", y, groups=h, eps=eps))
        return ref_conv_bn(sd, f"{p}.6", f"{p}.7", y, eps=eps)

    def stage(s, y):
        for j, row in enumerate(AUTHORS_M_STAGES[s]):
            y = ir(f"blocks.{s}.{j}", y, *row, acts[s][j], strides[s][j])
        return y

    x = h_swish(ref_conv_bn(sd, "first_layer.0", "first_layer.1", x, stride=2, eps=eps))
    base = ir("base_block", x, 16, 16, 16, 3, None, "HS", 1)
    x = stage(0, base)
    x = stage(1, x + skip("skip1", base, 28))
    x = stage(2, x + skip("skip2", base, 14))
    x = stage(3, x)
    x = h_swish(ref_conv_bn(sd, "conv.0", "conv.1", x, eps=eps))
    x = x.mean((2, 3))
    x = h_swish(F.linear(x, sd["classifier.0.weight"], sd["classifier.0.bias"]))
    return F.linear(x, sd["classifier.3.weight"], sd["classifier.3.bias"])


@pytest.mark.parametrize(
    ("name", "reference"),
    [("mobilenet_v3_large", reference_mobilenet_v3_large), ("skipnet_m", reference_skipnet_m)],
)
def test_output_equals_independent_reference(name, reference):
    torch.manual_seed(0)
    model = mobilebench.create_model(name).eval()
    randomise_bn(model)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = model(x)
        want = reference(model.state_dict(), x)
    assert got.shape == (2, 1000)
    assert want.abs().max() > 1e-3  # the comparison is not between two near-zero outputs
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
