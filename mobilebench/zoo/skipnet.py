"""SkipNet (Abrahamyan et al., "Bias Loss for Mobile Neural Networks", ICCV 2021).

A MobileNetV3-like backbone with two *skip blocks*: both take the output of the "base
block" at 1/2 resolution, average-pool it down to 1/8 and 1/16, and add their output to
the end of stage 0 and stage 1. The tables below are the paper's (Fig. 2) and the
authors' public configuration (``lusinlu/bias-loss-skipblocknet``,
``skipblocknet/skipblocknet.py``; its issue #6 gives the variants' settings).

Module and key names are the authors' (``first_layer``, ``base_block.conv.N``,
``blocks.S.J.conv.N`` with the SE at ``conv.6.fc.{0,2}``, ``skip1.core_block.N``,
``conv``, ``classifier``), so their published ``skipblocknet-m.pth`` loads as is.

Two deliberate differences from the authors' code, neither of which changes SkipNet-M:

- The skip blocks take ``make_divisible(16 * width)`` input channels (the base block's
  width); the authors hard-code 16, which fails for XS (8 channels) and L (24).
- The skip blocks pool to the spatial size of the stage output they are added to
  (28x28 and 14x14 at 224 input) instead of a hard-coded 28/14, so other input sizes
  work. With an input size that is a multiple of 16 this is an exact k x k average
  (k = 4 and 8), identical to the authors' adaptive pool at 224, and it is computed
  as a plain average pool (see :func:`pool_to`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mobilebench.zoo.blocks import (
    InvertedResidualConfig,
    ZooModel,
    activation_layer,
    check_dropout,
    check_width_mult,
    init_mobilenet_weights,
    make_divisible,
)
from mobilebench.zoo.registry import register_model

# The skip blocks need the stage-0/1 outputs to be exact 1/8 and 1/16 of the input.
SKIPNET_INPUT_MULTIPLE = 16


@dataclass(frozen=True)
class SkipNetRow:
    """One inverted-residual row of the paper's SkipNet table (width 1.0).

    ``expansion`` is t: the hidden width is ``make_divisible(in * t)`` of the block's
    actual (width-scaled) input. ``ends_stage`` closes one of the four stages.
    """

    kernel: int
    expansion: float
    out: int
    se: bool
    activation: str
    stride: int
    ends_stage: bool = False

    def resolve(self, in_channels: int, width_mult: float) -> InvertedResidualConfig:
        hidden = make_divisible(in_channels * self.expansion)
        return InvertedResidualConfig(
            in_channels=in_channels,
            kernel=self.kernel,
            hidden_channels=hidden,
            out_channels=make_divisible(self.out * width_mult),
            stride=self.stride,
            activation=self.activation,
            se_channels=make_divisible(hidden // 4) if self.se else None,
        )


@dataclass(frozen=True)
class SkipBlockRow:
    """A skip block: pooled base-block output -> 1x1 -> dw kxk -> 1x1, added to a stage.

    Its hidden width ``make_divisible(16 * expansion)`` is *not* width-scaled (as in the
    authors' code); ``out`` is. ``after_stage``: the stage whose output it is added to.
    """

    expansion: float
    out: int
    kernel: int
    after_stage: int

    def resolve(self, in_channels: int, width_mult: float) -> InvertedResidualConfig:
        return InvertedResidualConfig(
            in_channels=in_channels,
            kernel=self.kernel,
            hidden_channels=make_divisible(BASE_CHANNELS * self.expansion),
            out_channels=make_divisible(self.out * width_mult),
            stride=1,
            activation="RE",
        )


R = SkipNetRow
# Paper Fig. 2 / the authors' configuration: 14 inverted residuals in four stages.
SKIPNET_ROWS: tuple[SkipNetRow, ...] = (
    # k   t    out   SE     NL    s
    R(3, 4,    24, False, "RE", 2),
    R(3, 3,    24, False, "RE", 1),
    R(5, 3,    40, True,  "RE", 2),
    R(5, 3,    40, True,  "RE", 1),
    R(5, 6,    40, True,  "HS", 1, ends_stage=True),   # stage 0: 1/8 (28x28)
    R(3, 6,    80, False, "HS", 2),
    R(3, 2.5,  80, False, "HS", 1),
    R(3, 2.3,  80, False, "HS", 1),
    R(3, 2.3,  80, False, "HS", 1, ends_stage=True),   # stage 1: 1/16 (14x14)
    R(3, 6,   112, True,  "HS", 1),
    R(3, 6,   112, True,  "HS", 1, ends_stage=True),   # stage 2: 1/16
    R(5, 6,   160, True,  "HS", 2),
    R(5, 6,   160, True,  "HS", 1),
    R(5, 6,   160, True,  "HS", 1, ends_stage=True),   # stage 3: 1/32 (7x7)
)
del R

SKIP_BLOCKS: tuple[SkipBlockRow, SkipBlockRow] = (
    SkipBlockRow(expansion=6, out=40, kernel=5, after_stage=0),    # skip1: to 1/8
    SkipBlockRow(expansion=2.3, out=80, kernel=3, after_stage=1),  # skip2: to 1/16
)

BASE_CHANNELS = 16
# Classifier hidden width per head mode; scaled by the width only when width > 1.
HEAD_HIDDEN = {"large": 1280, "small": 1024}


class LinearSqueezeExcitation(nn.Module):
    """SE in the SkipNet authors' layout: pool, ``fc`` = Linear, ReLU, Linear, hard-sigmoid."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, squeeze),
            nn.ReLU(inplace=True),
            nn.Linear(squeeze, channels),
            nn.Hardsigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc(torch.flatten(self.avg_pool(x), 1))
        return x * scale[:, :, None, None]


def _conv_bn(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


def _flat_layers(config: InvertedResidualConfig, se: nn.Module | None) -> list[nn.Module]:
    """The authors' flat layer list: 1x1 conv, BN, act, dw kxk (stride s), BN, act,
    [``se``], 1x1 conv, BN. Unlike MobileNetV3 the 1x1 expansion is always there."""
    act = activation_layer(config.activation)
    hidden = config.hidden_channels
    return [
        *_conv_bn(config.in_channels, hidden, 1),
        act(inplace=True),
        *_conv_bn(hidden, hidden, config.kernel, stride=config.stride, groups=hidden),
        act(inplace=True),
        *([se] if se is not None else []),
        *_conv_bn(hidden, config.out_channels, 1),
    ]


class SkipNetInvertedResidual(nn.Module):
    """Inverted residual in the authors' layout: ``conv.0`` ... ``conv.8``, the SE (or an
    identity) at ``conv.6``."""

    def __init__(self, config: InvertedResidualConfig) -> None:
        super().__init__()
        se = (
            LinearSqueezeExcitation(config.hidden_channels, config.se_channels)
            if config.se_channels is not None
            else nn.Identity()
        )
        self.conv = nn.Sequential(*_flat_layers(config, se))
        self.use_residual = config.use_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class SkipBlock(nn.Module):
    """Average pool to the target size, then ``core_block``: 1x1, dw, 1x1 (ReLU), linear end."""

    def __init__(self, config: InvertedResidualConfig) -> None:
        super().__init__()
        self.core_block = nn.Sequential(*_flat_layers(config, None))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.core_block(pool_to(x, size))


def pool_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool ``x`` to ``size``: the authors' adaptive pool, as a plain k x k pool
    when the ratio is whole (always, for input sizes that are multiples of 16).

    Both give the same numbers; the plain pool is what XNNPACK delegates, whereas an
    adaptive pool to 28x28 stays on ExecuTorch's portable CPU kernels with layout copies
    around it.
    """
    height, width = x.shape[-2:]
    if height % size[0] == 0 and width % size[1] == 0:
        kernel = (height // size[0], width // size[1])
        return nn.functional.avg_pool2d(x, kernel, stride=kernel)
    return nn.functional.adaptive_avg_pool2d(x, size)


class SkipNet(ZooModel):
    """SkipNet: stem, base block, four stages with two skip blocks, 1x1 conv, classifier.

    ``width_mult`` scales every channel count (MobileNet rounding to multiples of 8);
    ``head`` picks the classifier's hidden width ("large": 1280, "small": 1024).
    """

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        head: str = "large",
        num_classes: int = 1000,
        dropout: float = 0.2,
        rows: tuple[SkipNetRow, ...] = SKIPNET_ROWS,
        skip_blocks: tuple[SkipBlockRow, SkipBlockRow] = SKIP_BLOCKS,
    ) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        dropout = check_dropout(dropout)
        if head not in HEAD_HIDDEN:
            raise ValueError(f"head must be one of {sorted(HEAD_HIDDEN)}, got {head!r}")
        self.num_classes = num_classes

        channels = make_divisible(BASE_CHANNELS * width_mult)
        base_channels = channels
        self.first_layer = nn.Sequential(*_conv_bn(3, channels, 3, stride=2), nn.Hardswish(inplace=True))
        self.base_block = SkipNetInvertedResidual(InvertedResidualConfig(channels, 3, channels, channels, 1, "HS"))

        stages: list[nn.Sequential] = []
        stage: list[nn.Module] = []
        stage_out: list[int] = []
        hidden = channels
        for row in rows:
            block = row.resolve(channels, width_mult)
            stage.append(SkipNetInvertedResidual(block))
            channels, hidden = block.out_channels, block.hidden_channels
            if row.ends_stage:
                stages.append(nn.Sequential(*stage))
                stage_out.append(channels)
                stage = []
        if stage or len(stages) != 4:
            raise ValueError("a SkipNet table needs exactly four stages, each closed by ends_stage=True")
        self.blocks = nn.ModuleList(stages)

        skips = []
        for spec in skip_blocks:
            skip = spec.resolve(base_channels, width_mult)
            if skip.out_channels != stage_out[spec.after_stage]:
                raise ValueError(
                    f"skip block width {skip.out_channels} does not match stage {spec.after_stage} "
                    f"({stage_out[spec.after_stage]})"
                )
            skips.append(SkipBlock(skip))
        self.skip1, self.skip2 = skips

        # The head's 1x1 conv expands like the last block did: md(md(160 w) * 6).
        self.num_features = hidden
        self.conv = nn.Sequential(*_conv_bn(channels, self.num_features, 1), nn.Hardswish(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        head_hidden = HEAD_HIDDEN[head]
        if width_mult > 1.0:
            head_hidden = make_divisible(head_hidden * width_mult)
        self.classifier = nn.Sequential(
            nn.Linear(self.num_features, head_hidden),
            nn.Hardswish(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )
        init_mobilenet_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_layer(x)
        base = self.base_block(x)
        x = self.blocks[0](base)
        x = self.blocks[1](x + self.skip1(base, x.shape[-2:]))
        x = self.blocks[2](x + self.skip2(base, x.shape[-2:]))
        x = self.blocks[3](x)
        return self.conv(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


@register_model(input_multiple=SKIPNET_INPUT_MULTIPLE)
def skipnet_xs(*, num_classes: int = 1000, dropout: float = 0.2) -> SkipNet:
    """SkipNet-XS: width 0.5, small head (paper: 2.3M params, 81M FLOPs, 69.9% top-1)."""
    return SkipNet(width_mult=0.5, head="small", num_classes=num_classes, dropout=dropout)


@register_model(input_multiple=SKIPNET_INPUT_MULTIPLE)
def skipnet_s(*, num_classes: int = 1000, dropout: float = 0.2) -> SkipNet:
    """SkipNet-S: width 0.75, small head (paper: 3.6M params, 152M FLOPs, 73.8% top-1)."""
    return SkipNet(width_mult=0.75, head="small", num_classes=num_classes, dropout=dropout)


@register_model(input_multiple=SKIPNET_INPUT_MULTIPLE)
def skipnet_m(*, num_classes: int = 1000, dropout: float = 0.2) -> SkipNet:
    """SkipNet-M: width 1.0, large head (paper: 5.5M params, 246M FLOPs, 76.2% top-1)."""
    return SkipNet(width_mult=1.0, head="large", num_classes=num_classes, dropout=dropout)


@register_model(input_multiple=SKIPNET_INPUT_MULTIPLE)
def skipnet_l(*, num_classes: int = 1000, dropout: float = 0.2) -> SkipNet:
    """SkipNet-L: width 1.15, large head (paper: 7.1M params, 364M FLOPs, 77.1% top-1)."""
    return SkipNet(width_mult=1.15, head="large", num_classes=num_classes, dropout=dropout)
