"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020).

A MobileNetV3-Large skeleton whose inverted residuals are replaced by *ghost
bottlenecks*: two ghost modules (expand, project), a depthwise conv between them only
when the block strides, and an SE layer on some rows. A ghost module makes half of its
output channels with a 1x1 "primary" conv and the other half from those with a cheap
3x3 depthwise conv (ratio 2), and concatenates the two halves.

Module and key names are those of the authors' public PyTorch code
(huawei-noah, ``ghostnet_pytorch/ghostnet.py``): ``conv_stem``, ``bn1``,
``blocks.S.J.ghost{1,2}.{primary_conv,cheap_operation}.{0,1}``, ``conv_dw``, ``bn_dw``,
``se.conv_reduce``, ``se.conv_expand``, ``shortcut.{0..3}``, ``blocks.9.0.{conv,bn1}``,
``conv_head``, ``classifier``. Their published ImageNet weights (GhostNet 1.0x,
``state_dict_73.98.pth``) therefore load into ``create_model("ghostnet")`` as they are.
Like that code, every channel count is rounded to a multiple of 4 and the weights keep
PyTorch's default initialisation (the reference code defines no init of its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mobilebench.zoo.blocks import (
    ConvBNAct,
    InvertedResidualConfig,
    ZooModel,
    check_dropout,
    check_width_mult,
    make_divisible,
)
from mobilebench.zoo.registry import register_model

# The reference code rounds every width-scaled channel count to a multiple of 4 (not 8).
GHOSTNET_DIVISOR = 4
# Ghost modules: half the output from the primary 1x1 conv, half from a 3x3 depthwise.
GHOST_RATIO = 2
GHOST_CHEAP_KERNEL = 3
GHOSTNET_STEM_CHANNELS = 16
# The head's 1x1 conv after pooling keeps 1280 channels at every width.
GHOSTNET_HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class GhostRow:
    """One G-bneck row of the GhostNet paper's Table 1, channel counts at width 1.0.

    Columns as in the paper: kernel of the depthwise conv, expansion size ("#exp"),
    output channels ("#out"), SE, stride.
    """

    kernel: int
    expanded: int
    out: int
    se: bool
    stride: int


R = GhostRow
# GhostNet paper Table 1: the 16 G-bneck rows between the 3x3 stem (16 channels,
# stride 2) and the final 1x1 conv to 960 channels. Grouped into the nine stages of the
# authors' code (``blocks.0`` .. ``blocks.8``; ``blocks.9`` is the 1x1 conv), so the
# module indices match their checkpoint.
GHOSTNET_STAGES: tuple[tuple[GhostRow, ...], ...] = (
    #  k  exp  out   SE     s
    (R(3,  16,  16, False, 1),),    # 112x112
    (R(3,  48,  24, False, 2),),    # -> 56x56
    (R(3,  72,  24, False, 1),),
    (R(5,  72,  40, True,  2),),    # -> 28x28
    (R(5, 120,  40, True,  1),),
    (R(3, 240,  80, False, 2),),    # -> 14x14
    (
        R(3, 200,  80, False, 1),
        R(3, 184,  80, False, 1),
        R(3, 184,  80, False, 1),
        R(3, 480, 112, True,  1),
        R(3, 672, 112, True,  1),
    ),
    (R(5, 672, 160, True,  2),),    # -> 7x7
    (
        R(5, 960, 160, False, 1),
        R(5, 960, 160, True,  1),
        R(5, 960, 160, False, 1),
        R(5, 960, 160, True,  1),
    ),
)
# Table 1's "Conv2d 1x1, #out 960" after the last G-bneck: the feature map.
GHOSTNET_FEATURE_CHANNELS = 960
del R


def _round(channels: float) -> int:
    return make_divisible(channels, GHOSTNET_DIVISOR)


def resolve_stages(width_mult: float) -> list[list[InvertedResidualConfig]]:
    """Every ghost bottleneck, stage by stage, with channel counts scaled by ``width_mult``.

    As in the authors' code: hidden and output widths are rounded to a multiple of 4,
    and the SE squeeze width is ``round4(hidden / 4)``.
    """
    in_channels = _round(GHOSTNET_STEM_CHANNELS * width_mult)
    stages = []
    for rows in GHOSTNET_STAGES:
        stage = []
        for row in rows:
            hidden = _round(row.expanded * width_mult)
            out = _round(row.out * width_mult)
            stage.append(
                InvertedResidualConfig(
                    in_channels=in_channels,
                    kernel=row.kernel,
                    hidden_channels=hidden,
                    out_channels=out,
                    stride=row.stride,
                    activation="RE",
                    se_channels=_round(hidden * 0.25) if row.se else None,
                )
            )
            in_channels = out
        stages.append(stage)
    return stages


class GhostModule(nn.Module):
    """Primary 1x1 conv to ``ceil(out / 2)`` channels, cheap 3x3 depthwise conv on those
    to as many more, concatenated (children ``primary_conv`` and ``cheap_operation``,
    each conv, BN[, ReLU]).

    ``relu=False`` for the projecting module at the end of a bottleneck (linear output).
    """

    def __init__(self, in_channels: int, out_channels: int, *, relu: bool) -> None:
        super().__init__()
        primary = math.ceil(out_channels / GHOST_RATIO)
        cheap = primary * (GHOST_RATIO - 1)
        activation = nn.ReLU if relu else None
        self.out_channels = out_channels
        # Odd output widths make one channel too many; only then is a slice needed.
        self.needs_trim = primary + cheap != out_channels
        self.primary_conv = ConvBNAct(in_channels, primary, 1, activation=activation)
        self.cheap_operation = ConvBNAct(
            primary, cheap, GHOST_CHEAP_KERNEL, groups=primary, activation=activation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary_conv(x)
        out = torch.cat([primary, self.cheap_operation(primary)], dim=1)
        return out[:, : self.out_channels] if self.needs_trim else out


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """relu6(x + 3) / 6, written as the reference code writes it.

    Same values as ``nn.Hardsigmoid``, but ExecuTorch lowers this form to XNNPACK
    entirely, while ``aten.hardsigmoid``'s decomposition leaves copies of its scalar
    constants outside the delegate.
    """
    return F.relu6(x + 3.0) / 6.0


class GhostSqueezeExcite(nn.Module):
    """SE of the GhostNet code: pool, 1x1 ``conv_reduce``, ReLU, 1x1 ``conv_expand``,
    hard-sigmoid gate, multiply.

    Same arithmetic as :class:`mobilebench.zoo.blocks.SqueezeExcitation`; kept separate
    for the authors' child names (so their checkpoints load) and for the gate's form.
    """

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x))))
        return x * hard_sigmoid(scale)


def _depthwise(channels: int, kernel: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel, stride=stride, padding=(kernel - 1) // 2, groups=channels, bias=False)


class GhostBottleneck(nn.Module):
    """G-bneck: ghost module (ReLU), [depthwise kxk stride 2 + BN], [SE], ghost module
    (linear), plus a shortcut.

    The shortcut is the identity when the block keeps shape, otherwise depthwise kxk
    (with the block's stride) + BN + 1x1 conv + BN, as in the reference code.
    """

    def __init__(self, config: InvertedResidualConfig) -> None:
        super().__init__()
        self.stride = config.stride
        self.ghost1 = GhostModule(config.in_channels, config.hidden_channels, relu=True)
        if config.stride > 1:
            self.conv_dw = _depthwise(config.hidden_channels, config.kernel, config.stride)
            self.bn_dw = nn.BatchNorm2d(config.hidden_channels)
        self.se = (
            GhostSqueezeExcite(config.hidden_channels, config.se_channels)
            if config.se_channels is not None
            else None
        )
        self.ghost2 = GhostModule(config.hidden_channels, config.out_channels, relu=False)
        if config.use_residual:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                _depthwise(config.in_channels, config.kernel, config.stride),
                nn.BatchNorm2d(config.in_channels),
                nn.Conv2d(config.in_channels, config.out_channels, 1, bias=False),
                nn.BatchNorm2d(config.out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)
        if self.stride > 1:
            out = self.bn_dw(self.conv_dw(out))
        if self.se is not None:
            out = self.se(out)
        out = self.ghost2(out)
        return out + self.shortcut(x)


class GhostConvBnAct(nn.Module):
    """The final 1x1 conv + BN + ReLU, with the reference code's child names (``conv``, ``bn1``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv(x)))


class GhostNet(ZooModel):
    """GhostNet at a width multiplier: stem, 16 G-bnecks, 1x1 conv (the feature map),
    global pool, 1x1 conv to 1280 with bias + ReLU (after pooling), dropout, Linear.
    """

    def __init__(self, *, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        self.dropout = check_dropout(dropout)
        self.num_classes = num_classes
        stages = resolve_stages(width_mult)
        stem_channels = stages[0][0].in_channels
        last_block_channels = stages[-1][-1].out_channels
        self.num_features = _round(GHOSTNET_FEATURE_CHANNELS * width_mult)

        self.conv_stem = nn.Conv2d(3, stem_channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.act1 = nn.ReLU(inplace=True)
        self.blocks = nn.Sequential(
            *(nn.Sequential(*(GhostBottleneck(block) for block in stage)) for stage in stages),
            nn.Sequential(GhostConvBnAct(last_block_channels, self.num_features)),
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(self.num_features, GHOSTNET_HEAD_CHANNELS, 1, bias=True)
        self.act2 = nn.ReLU(inplace=True)
        self.head_dropout = nn.Dropout(p=self.dropout)
        self.classifier = nn.Linear(GHOSTNET_HEAD_CHANNELS, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.act1(self.bn1(self.conv_stem(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv_head(self.global_pool(features)))
        return self.classifier(self.head_dropout(torch.flatten(x, 1)))


@register_model()
def ghostnet(*, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> GhostNet:
    """GhostNet (paper Table 7; 1.0x: 141M FLOPs, 5.2M params, 73.9% top-1; authors' weights load as is)."""
    return GhostNet(num_classes=num_classes, width_mult=width_mult, dropout=dropout)


@register_model()
def ghostnet_130(*, num_classes: int = 1000, dropout: float = 0.2) -> GhostNet:
    """GhostNet 1.3x (paper Table 7 / Bias Loss Table 2: 226M FLOPs, 7.3M params, 75.7% top-1)."""
    return GhostNet(num_classes=num_classes, width_mult=1.3, dropout=dropout)
