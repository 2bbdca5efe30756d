"""MobileNetV3 Large and Small (Howard et al., "Searching for MobileNetV3", ICCV 2019).

The module tree and key names are torchvision's (``features.N.block.M...``,
``classifier.N``), so torchvision's published ImageNet state_dicts load as they are and
give the same outputs. BatchNorm uses eps 0.001 and momentum 0.01 as in torchvision (the
paper's TensorFlow settings).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mobilebench.zoo.blocks import (
    ACTIVATIONS,
    BatchNormConfig,
    ConvBNAct,
    InvertedResidual,
    InvertedResidualConfig,
    ZooModel,
    check_dropout,
    check_width_mult,
    init_mobilenet_weights,
    make_divisible,
)
from mobilebench.zoo.registry import register_model

MOBILENETV3_NORM = BatchNormConfig(eps=0.001, momentum=0.01)


@dataclass(frozen=True)
class MobileNetV3Row:
    """One "bneck" row of the paper's tables, channel counts at width 1.0.

    Columns as in the paper: input channels, kernel, expansion size ("exp size"), output
    channels ("#out"), SE, activation (RE = ReLU, HS = hard-swish), stride.
    """

    in_channels: int
    kernel: int
    expanded: int
    out: int
    se: bool
    activation: str
    stride: int

    def resolve(self, width_mult: float) -> InvertedResidualConfig:
        """The block with every channel count scaled by ``width_mult`` (MobileNet rounding)."""
        hidden = make_divisible(self.expanded * width_mult)
        return InvertedResidualConfig(
            in_channels=make_divisible(self.in_channels * width_mult),
            kernel=self.kernel,
            hidden_channels=hidden,
            out_channels=make_divisible(self.out * width_mult),
            stride=self.stride,
            activation=self.activation,
            se_channels=make_divisible(hidden // 4) if self.se else None,
        )


def bneck_table(text: str) -> tuple[MobileNetV3Row, ...]:
    """The rows of a bneck table written as the paper prints it: one row per line,
    columns ``in k exp out SE NL s`` (SE: ``SE`` or ``-``), after a header line."""
    header, *lines = [line.split() for line in text.strip().splitlines()]
    if header != ["in", "k", "exp", "out", "SE", "NL", "s"]:
        raise ValueError(f"bneck table header must be 'in k exp out SE NL s', got {' '.join(header)!r}")
    rows = []
    for cells in lines:
        cin, kernel, exp, out, se, act, stride = cells
        if se not in ("SE", "-") or act not in ACTIVATIONS:
            raise ValueError(f"bad bneck row {' '.join(cells)!r}")
        rows.append(MobileNetV3Row(int(cin), int(kernel), int(exp), int(out), se == "SE", act, int(stride)))
    return tuple(rows)


# Paper Table 1 (MobileNetV3-Large): the 15 bneck rows between the 3x3 stem (16 channels,
# stride 2, HS) and the 1x1 conv to 960 channels; the classifier's hidden width is 1280.
LARGE_ROWS = bneck_table("""
     in  k  exp  out  SE  NL  s
     16  3   16   16  -   RE  1
     16  3   64   24  -   RE  2
     24  3   72   24  -   RE  1
     24  5   72   40  SE  RE  2
     40  5  120   40  SE  RE  1
     40  5  120   40  SE  RE  1
     40  3  240   80  -   HS  2
     80  3  200   80  -   HS  1
     80  3  184   80  -   HS  1
     80  3  184   80  -   HS  1
     80  3  480  112  SE  HS  1
    112  3  672  112  SE  HS  1
    112  5  672  160  SE  HS  2
    160  5  960  160  SE  HS  1
    160  5  960  160  SE  HS  1
""")
LARGE_LAST_CHANNELS = 1280

# Paper Table 2 (MobileNetV3-Small): 11 bneck rows; 1x1 conv to 576, classifier hidden 1024.
SMALL_ROWS = bneck_table("""
     in  k  exp  out  SE  NL  s
     16  3   16   16  SE  RE  2
     16  3   72   24  -   RE  2
     24  3   88   24  -   RE  1
     24  5   96   40  SE  HS  2
     40  5  240   40  SE  HS  1
     40  5  240   40  SE  HS  1
     40  5  120   48  SE  HS  1
     48  5  144   48  SE  HS  1
     48  5  288   96  SE  HS  2
     96  5  576   96  SE  HS  1
     96  5  576   96  SE  HS  1
""")
SMALL_LAST_CHANNELS = 1024


class MobileNetV3(ZooModel):
    """MobileNetV3 from a bneck table: stem, bnecks, 1x1 conv (6x), pool, 2-layer classifier.

    ``features`` ends with the 1x1 conv + BN + hard-swish whose output is the feature map
    (960 channels for Large 1.0x); ``classifier`` = Linear, hard-swish, Dropout, Linear.
    ``scale_head``: scale the classifier's hidden width (1280/1024) by ``width_mult`` as
    torchvision does; ``False`` keeps it fixed.
    """

    def __init__(
        self,
        rows: tuple[MobileNetV3Row, ...],
        last_channels: int,
        *,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        scale_head: bool = True,
    ) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        dropout = check_dropout(dropout)
        blocks = [row.resolve(width_mult) for row in rows]
        stem_channels = blocks[0].in_channels
        features_in = blocks[-1].out_channels
        self.num_features = 6 * features_in
        self.num_classes = num_classes
        hidden = make_divisible(last_channels * width_mult) if scale_head else last_channels

        layers: list[nn.Module] = [
            ConvBNAct(3, stem_channels, 3, stride=2, activation=nn.Hardswish, norm=MOBILENETV3_NORM)
        ]
        layers += [InvertedResidual(block, MOBILENETV3_NORM) for block in blocks]
        layers.append(ConvBNAct(features_in, self.num_features, 1, activation=nn.Hardswish, norm=MOBILENETV3_NORM))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(self.num_features, hidden),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(hidden, num_classes),
        )
        init_mobilenet_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


@register_model()
def mobilenet_v3_large(*, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV3:
    """MobileNetV3-Large (paper Table 1; 1.0x: 5.48M params, 219M MAdds, 75.2% top-1)."""
    return MobileNetV3(LARGE_ROWS, LARGE_LAST_CHANNELS, num_classes=num_classes, width_mult=width_mult, dropout=dropout)


@register_model()
def mobilenet_v3_large_125(*, num_classes: int = 1000, dropout: float = 0.2) -> MobileNetV3:
    """MobileNetV3-Large 1.25x (Bias Loss paper Table 1: 356M FLOPs, 7.5M params).

    The classifier's hidden width stays 1280: scaled to 1600 the way torchvision's
    ``width_mult`` would do it, the model has 8.16M parameters instead of the published
    7.5M (7.46M with 1280). torchvision publishes no 1.25x weights to stay compatible with.
    """
    return MobileNetV3(
        LARGE_ROWS, LARGE_LAST_CHANNELS, num_classes=num_classes, width_mult=1.25, dropout=dropout, scale_head=False
    )


@register_model()
def mobilenet_v3_small(*, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV3:
    """MobileNetV3-Small (paper Table 2; 1.0x: 2.54M params with torchvision's head, 66M MAdds, 67.4% top-1)."""
    return MobileNetV3(SMALL_ROWS, SMALL_LAST_CHANNELS, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
