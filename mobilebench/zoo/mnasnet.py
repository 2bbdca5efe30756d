"""MnasNet (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile",
CVPR 2019): the paper's MnasNet-A1 and torchvision's MNASNet 1.0.

Two architectures share the name:

- :class:`MnasNetA1` is the searched model of the paper's Figure 7(a) (SepConv, MBConv3/6
  with 3x3/5x5 kernels, SE on three stages), as in the TensorFlow reference
  (``tensorflow/tpu``, ``models/official/mnasnet``): sigmoid SE gate with a squeeze width
  of a quarter of the block's *input* channels, BatchNorm eps 1e-3 / momentum 0.01,
  TensorFlow's initialisation. Nobody publishes PyTorch weights in this exact layout, so
  its module names follow this zoo (``features.N.block.M``, ``classifier.1``).
- :class:`TorchvisionMNASNet` is ``torchvision.models.MNASNet`` (the paper's B1 variant,
  no SE): same module tree and key names (``layers.N...``, ``classifier.1``) so
  torchvision's published ``mnasnet1.0`` state_dict loads as is and gives the same outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mobilebench.zoo.blocks import (
    BatchNormConfig,
    ConvBNAct,
    SqueezeExcitation,
    ZooModel,
    check_dropout,
    check_width_mult,
    make_divisible,
)
from mobilebench.zoo.registry import register_model

# TensorFlow's BatchNorm momentum 0.99 is PyTorch's 0.01; eps 1e-3 as in the reference.
MNASNET_A1_NORM = BatchNormConfig(eps=1e-3, momentum=0.01)
MNASNET_STEM_CHANNELS = 32
MNASNET_HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class MnasNetRow:
    """One row of MnasNet's stage table: ``repeats`` identical blocks, the first strided.

    ``expansion`` is the MBConv expansion ratio (1 = SepConv, no 1x1 expansion);
    ``se`` adds squeeze-and-excitation; channel counts are at width 1.0.
    """

    repeats: int
    kernel: int
    expansion: int
    out: int
    se: bool
    stride: int


@dataclass(frozen=True)
class MBConvConfig:
    """One MBConv block with its final channel counts (after width scaling).

    ``se_channels``: the SE squeeze width, or ``None`` for no SE.
    """

    in_channels: int
    kernel: int
    hidden_channels: int
    out_channels: int
    se_channels: int | None
    stride: int

    @property
    def use_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


R = MnasNetRow
# MnasNet paper Figure 7(a), MnasNet-A1, between the 3x3 stem (32 channels, stride 2)
# and the 1x1 conv to 1280 (the reference code's head). The SE squeeze ratio is 0.25.
MNASNET_A1_ROWS: tuple[MnasNetRow, ...] = (
    # x  k  t  out   SE    s
    R(1, 3, 1,  16, False, 1),  # SepConv (k3x3), 112x112
    R(2, 3, 6,  24, False, 2),  # MBConv6 (k3x3), -> 56x56
    R(3, 5, 3,  40, True,  2),  # MBConv3 (k5x5), SE, -> 28x28
    R(4, 3, 6,  80, False, 2),  # MBConv6 (k3x3), -> 14x14
    R(2, 3, 6, 112, True,  1),  # MBConv6 (k3x3), SE
    R(3, 5, 6, 160, True,  2),  # MBConv6 (k5x5), SE, -> 7x7
    R(1, 3, 6, 320, False, 1),  # MBConv6 (k3x3)
)

# torchvision's MNASNet (the paper's B1, Figure 7 without SE): stem conv 3x3 (32),
# SepConv to 16, then these six stacks, then the 1x1 conv to 1280. (torchvision's
# ``_stack(in, out, kernel, stride, expansion, repeats)`` arguments.)
TORCHVISION_MNASNET_ROWS: tuple[MnasNetRow, ...] = (
    # x  k  t  out   SE    s
    R(3, 3, 3,  24, False, 2),
    R(3, 5, 3,  40, False, 2),
    R(3, 5, 6,  80, False, 2),
    R(2, 3, 6,  96, False, 1),
    R(4, 5, 6, 192, False, 2),
    R(1, 3, 6, 320, False, 1),
)
TORCHVISION_SEPCONV_CHANNELS = 16
# torchvision: "Paper suggests 0.9997 momentum, for TensorFlow" -> PyTorch 1 - 0.9997.
TORCHVISION_MNASNET_NORM = BatchNormConfig(eps=1e-5, momentum=1 - 0.9997)
del R


def resolve_a1_blocks(width_mult: float) -> list[MBConvConfig]:
    """Every MnasNet-A1 block, with channels scaled by ``width_mult`` (rounded to 8).

    The SE squeeze width is ``max(1, int(in_channels * 0.25))`` of the block's input,
    as in the TensorFlow reference.
    """
    in_channels = make_divisible(MNASNET_STEM_CHANNELS * width_mult)
    blocks = []
    for row in MNASNET_A1_ROWS:
        out = make_divisible(row.out * width_mult)
        for index in range(row.repeats):
            blocks.append(
                MBConvConfig(
                    in_channels=in_channels,
                    kernel=row.kernel,
                    hidden_channels=in_channels * row.expansion,
                    out_channels=out,
                    se_channels=max(1, int(in_channels * 0.25)) if row.se else None,
                    stride=row.stride if index == 0 else 1,
                )
            )
            in_channels = out
    return blocks


class MBConv(nn.Module):
    """MnasNet's MBConv in the zoo's layout: ``block`` = [1x1 expand] dw kxk [SE] 1x1 project.

    ReLU throughout; the 1x1 expansion is left out at expansion 1 (SepConv). Unlike
    :class:`mobilebench.zoo.blocks.InvertedResidual` the SE gate is a sigmoid, as in
    MnasNet (the hard-sigmoid came with MobileNetV3). Residual at stride 1, same width.
    """

    def __init__(self, config: MBConvConfig, norm: BatchNormConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if config.hidden_channels != config.in_channels:
            layers.append(ConvBNAct(config.in_channels, config.hidden_channels, 1, norm=norm))
        layers.append(
            ConvBNAct(
                config.hidden_channels,
                config.hidden_channels,
                config.kernel,
                stride=config.stride,
                groups=config.hidden_channels,
                norm=norm,
            )
        )
        if config.se_channels is not None:
            layers.append(SqueezeExcitation(config.hidden_channels, config.se_channels, scale_activation=nn.Sigmoid))
        layers.append(ConvBNAct(config.hidden_channels, config.out_channels, 1, activation=None, norm=norm))
        self.block = nn.Sequential(*layers)
        self.use_residual = config.use_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


def init_tensorflow_mnasnet_weights(model: nn.Module) -> None:
    """The TensorFlow MnasNet/EfficientNet initialisation.

    Conv weights ~ N(0, 2 / fan_out) with fan_out = k*k*out_channels / groups (so a
    depthwise conv's fan-out is k*k, as TensorFlow computes it), conv biases 0;
    BatchNorm weight 1, bias 0; Linear weights ~ U(-1/sqrt(out), 1/sqrt(out)), bias 0.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            k_h, k_w = module.kernel_size
            fan_out = k_h * k_w * module.out_channels // module.groups
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.out_features)
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)


class MnasNetA1(ZooModel):
    """MnasNet-A1: stem, SepConv + 15 MBConvs, 1x1 conv to 1280 + ReLU (the feature map),
    global average pool, dropout, Linear.
    """

    def __init__(self, *, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        width_mult = check_width_mult(width_mult)
        dropout = check_dropout(dropout)
        blocks = resolve_a1_blocks(width_mult)
        # The reference scales the head like every other conv (round_filters(1280)).
        self.num_features = make_divisible(MNASNET_HEAD_CHANNELS * width_mult)
        self.num_classes = num_classes
        norm = MNASNET_A1_NORM
        layers: list[nn.Module] = [ConvBNAct(3, blocks[0].in_channels, 3, stride=2, norm=norm)]
        layers += [MBConv(block, norm) for block in blocks]
        layers.append(ConvBNAct(blocks[-1].out_channels, self.num_features, 1, norm=norm))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(self.num_features, num_classes))
        init_tensorflow_mnasnet_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))


class TorchvisionInvertedResidual(nn.Module):
    """torchvision's MNASNet block: a flat ``layers`` Sequential of
    1x1 conv, BN, ReLU, dw kxk conv, BN, ReLU, 1x1 conv, BN (indices 0..7);
    residual at stride 1 and equal widths.
    """

    def __init__(self, config: MBConvConfig, norm: BatchNormConfig) -> None:
        super().__init__()
        hidden = config.hidden_channels
        self.apply_residual = config.use_residual
        self.layers = nn.Sequential(
            nn.Conv2d(config.in_channels, hidden, 1, bias=False),
            norm.make(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                hidden,
                hidden,
                config.kernel,
                stride=config.stride,
                padding=config.kernel // 2,
                groups=hidden,
                bias=False,
            ),
            norm.make(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, config.out_channels, 1, bias=False),
            norm.make(config.out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return out + x if self.apply_residual else out


def resolve_torchvision_stacks(alpha: float) -> list[list[MBConvConfig]]:
    """torchvision's six stacks of inverted residuals at depth multiplier ``alpha``.

    torchvision's ``_round_to_multiple_of(v, 8)`` is the same rounding as
    :func:`make_divisible`; only the first block of a stack strides.
    """
    in_channels = make_divisible(TORCHVISION_SEPCONV_CHANNELS * alpha)
    stacks = []
    for row in TORCHVISION_MNASNET_ROWS:
        out = make_divisible(row.out * alpha)
        stack = []
        for index in range(row.repeats):
            stack.append(
                MBConvConfig(
                    in_channels=in_channels,
                    kernel=row.kernel,
                    hidden_channels=in_channels * row.expansion,
                    out_channels=out,
                    se_channels=None,
                    stride=row.stride if index == 0 else 1,
                )
            )
            in_channels = out
        stacks.append(stack)
    return stacks


class TorchvisionMNASNet(ZooModel):
    """``torchvision.models.MNASNet`` (version 2 layout): ``layers`` = stem conv/BN/ReLU
    (0-2), depthwise 3x3/BN/ReLU (3-5), 1x1 to 16 + BN (6-7), six stacks (8-13), 1x1 conv
    to 1280/BN/ReLU (14-16); ``classifier`` = Dropout, Linear. The feature map is the
    output of ``layers``; the head averages it over H and W.
    """

    def __init__(self, *, alpha: float = 1.0, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        alpha = check_width_mult(alpha)
        dropout = check_dropout(dropout)
        norm = TORCHVISION_MNASNET_NORM
        stem = make_divisible(MNASNET_STEM_CHANNELS * alpha)
        sepconv = make_divisible(TORCHVISION_SEPCONV_CHANNELS * alpha)
        stacks = resolve_torchvision_stacks(alpha)
        self.alpha = alpha
        self.num_classes = num_classes
        self.num_features = MNASNET_HEAD_CHANNELS
        layers: list[nn.Module] = [
            nn.Conv2d(3, stem, 3, padding=1, stride=2, bias=False),
            norm.make(stem),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem, stem, 3, padding=1, stride=1, groups=stem, bias=False),
            norm.make(stem),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem, sepconv, 1, bias=False),
            norm.make(sepconv),
        ]
        layers += [nn.Sequential(*(TorchvisionInvertedResidual(b, norm) for b in stack)) for stack in stacks]
        layers += [
            nn.Conv2d(stacks[-1][-1].out_channels, self.num_features, 1, bias=False),
            norm.make(self.num_features),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(self.num_features, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init: conv He-normal (fan-out, ReLU gain), BN 1/0,
        Linear He-uniform (fan-out, gain 1 as for sigmoid), biases 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, mode="fan_out", nonlinearity="sigmoid")
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        # torchvision writes x.mean([2, 3]); keepdim + flatten gives the same numbers
        # and is the form XNNPACK takes (it leaves a mean without keepdim outside).
        return self.classifier(torch.flatten(features.mean([2, 3], keepdim=True), 1))


@register_model()
def mnasnet_a1(*, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MnasNetA1:
    """MnasNet-A1 (paper Figure 7(a); 312M MAdds, 3.9M params, 75.2% top-1)."""
    return MnasNetA1(num_classes=num_classes, width_mult=width_mult, dropout=dropout)


@register_model()
def mnasnet1_0(*, num_classes: int = 1000, dropout: float = 0.2) -> TorchvisionMNASNet:
    """torchvision's MNASNet 1.0 (4.38M params, 0.31 GFLOPS, 73.456% top-1; its weights load as is)."""
    return TorchvisionMNASNet(alpha=1.0, num_classes=num_classes, dropout=dropout)
