"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

Module tree and key names are torchvision's (``features.N.conv.M...``, ``classifier.1``)
so its published ImageNet state_dict loads as is. BatchNorm keeps PyTorch's defaults
(eps 1e-5), as torchvision's MobileNetV2 does.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilebench.zoo.blocks import (
    BatchNormConfig,
    ConvBNAct,
    InvertedResidualConfig,
    StageRow,
    ZooModel,
    activation_layer,
    check_dropout,
    check_width_mult,
    expand_stages,
    init_mobilenet_weights,
    make_divisible,
)
from mobilebench.zoo.registry import register_model

S = StageRow
# Paper Table 2 (t, c, n, s): after the 3x3 stem (32 channels, stride 2) and before the
# 1x1 conv to 1280. Every block is 3x3 depthwise with ReLU6, no SE.
MOBILENETV2_STAGES: tuple[StageRow, ...] = (
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
    then the projection as a bare 1x1 conv and BN (``conv.N``, ``conv.N+1``, not a
    :class:`ConvBNAct`: torchvision's keys); residual add at stride 1 with equal channels.
    """

    def __init__(self, config: InvertedResidualConfig) -> None:
        super().__init__()
        act = activation_layer(config.activation)
        hidden = config.hidden_channels
        layers: list[nn.Module] = []
        if hidden != config.in_channels:
            layers.append(ConvBNAct(config.in_channels, hidden, 1, activation=act))
        layers += [
            ConvBNAct(hidden, hidden, config.kernel, stride=config.stride, groups=hidden, activation=act),
            nn.Conv2d(hidden, config.out_channels, 1, bias=False),
            BatchNormConfig().make(config.out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = config.use_residual
        self.out_channels = config.out_channels

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
        stages: tuple[StageRow, ...] = MOBILENETV2_STAGES,
    ) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        dropout = check_dropout(dropout)
        channels = make_divisible(STEM_CHANNELS * width_mult)
        # The last conv is never narrowed below 1280 (paper section 5.1).
        self.num_features = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        self.num_classes = num_classes

        layers: list[nn.Module] = [ConvBNAct(3, channels, 3, stride=2, activation=nn.ReLU6)]
        for stage in expand_stages(stages, channels, width_mult, activation="RE6"):
            layers += [MobileNetV2Block(block) for block in stage]
            channels = stage[-1].out_channels
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
