"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

Module tree and key names are torchvision's (``features.N.conv.M...``, ``classifier.1``)
so its published ImageNet state_dict loads as is. BatchNorm keeps PyTorch's defaults
(eps 1e-5), as torchvision's MobileNetV2 does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mobilebench.zoo.blocks import (
    BatchNormConfig,
    ConvBNAct,
    ZooModel,
    check_dropout,
    check_width_mult,
    init_mobilenet_weights,
    make_divisible,
)
from mobilebench.zoo.registry import register_model


@dataclass(frozen=True)
class MobileNetV2Stage:
    """One row of the paper's Table 2: expansion t, output channels c, repeats n, stride s.

    The first of the n blocks has stride s, the others stride 1.
    """

    expansion: int
    out: int
    repeats: int
    stride: int


S = MobileNetV2Stage
# Paper Table 2: after the 3x3 stem (32 channels, stride 2) and before the 1x1 conv to 1280.
MOBILENETV2_STAGES: tuple[MobileNetV2Stage, ...] = (
    # t   c   n  s
    S(1, 16,  1, 1),
    S(6, 24,  2, 2),
    S(6, 32,  3, 2),
    S(6, 64,  4, 2),
    S(6, 96,  3, 1),
    S(6, 160, 3, 2),
    S(6, 320, 1, 1),
)
del S
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


class MobileNetV2Block(nn.Module):
    """Inverted residual with linear bottleneck, torchvision's layout (``conv``).

    [1x1 expand + BN + ReLU6] (left out when t == 1), 3x3 depthwise + BN + ReLU6,
    1x1 projection conv, BN; residual add at stride 1 with equal channels.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expansion))
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            BatchNormConfig().make(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(ZooModel):
    """MobileNetV2: stem, 17 inverted residuals, 1x1 conv to 1280, pool, dropout + linear."""

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        stages: tuple[MobileNetV2Stage, ...] = MOBILENETV2_STAGES,
    ) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        dropout = check_dropout(dropout)
        channels = make_divisible(STEM_CHANNELS * width_mult)
        # The last conv is never narrowed below 1280 (paper section 5.1).
        self.num_features = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        self.num_classes = num_classes

        layers: list[nn.Module] = [ConvBNAct(3, channels, 3, stride=2, activation=nn.ReLU6)]
        for stage in stages:
            out = make_divisible(stage.out * width_mult)
            for i in range(stage.repeats):
                layers.append(MobileNetV2Block(channels, out, stage.stride if i == 0 else 1, stage.expansion))
                channels = out
        layers.append(ConvBNAct(channels, self.num_features, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.num_features, num_classes))
        init_mobilenet_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(features, 1)
        return self.classifier(torch.flatten(pooled, 1))


@register_model()
def mobilenet_v2(*, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV2:
    """MobileNetV2 (paper: 1.0x 3.4M params, 300M MAdds, 72.0% top-1)."""
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, dropout=dropout)
