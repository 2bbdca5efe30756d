"""MnasNet (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile",
CVPR 2019): the paper's MnasNet-A1 and torchvision's MNASNet 1.0.

Two architectures share the name:

- :class:`MnasNetA1` is the searched model of the paper's Figure 7(a) (SepConv, MBConv3/6
  with 3x3/5x5 kernels, SE on three stages), as in the TensorFlow reference
  (``tensorflow/tpu``, ``models/official/mnasnet``): sigmoid SE gate with a squeeze width
  of a quarter of the block's *input* channels, BatchNorm eps 1e-3 / momentum 0.01,
  TensorFlow's initialisation. Nobody publishes PyTorch weights in this exact layout, so
  it is built from the zoo's :class:`~mobilebench.zoo.blocks.InvertedResidual`
  (``features.N.block.M``, ``classifier.1``).
- :class:`TorchvisionMNASNet` is ``torchvision.models.MNASNet`` (the paper's B1 variant,
  no SE): same module tree and key names (``layers.N...``, ``classifier.1``) so
  torchvision's published ``mnasnet1.0`` state_dict loads as is and gives the same outputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mobilebench.zoo.blocks import (
    BatchNormConfig,
    ConvBNAct,
    InvertedResidual,
    InvertedResidualConfig,
    StageRow,
    ZooModel,
    check_dropout,
    check_width_mult,
    expand_stages,
    make_divisible,
)
from mobilebench.zoo.registry import register_model

# TensorFlow's BatchNorm momentum 0.99 is PyTorch's 0.01; eps 1e-3 as in the reference.
MNASNET_A1_NORM = BatchNormConfig(eps=1e-3, momentum=0.01)
MNASNET_STEM_CHANNELS = 32
MNASNET_HEAD_CHANNELS = 1280

R = StageRow
# MnasNet paper Figure 7(a), MnasNet-A1, between the 3x3 stem (32 channels, stride 2)
# and the 1x1 conv to 1280 (the reference code's head). ReLU throughout; SE with a
# sigmoid gate, squeezing to a quarter of the block's input channels.
MNASNET_A1_ROWS: tuple[StageRow, ...] = (
    # t  out  x  s  k   SE
    R(1,  16, 1, 1, 3, False),  # SepConv (k3x3), 112x112
    R(6,  24, 2, 2, 3, False),  # MBConv6 (k3x3), -> 56x56
    R(3,  40, 3, 2, 5, True),   # MBConv3 (k5x5), SE, -> 28x28
    R(6,  80, 4, 2, 3, False),  # MBConv6 (k3x3), -> 14x14
    R(6, 112, 2, 1, 3, True),   # MBConv6 (k3x3), SE
    R(6, 160, 3, 2, 5, True),   # MBConv6 (k5x5), SE, -> 7x7
    R(6, 320, 1, 1, 3, False),  # MBConv6 (k3x3)
)

# torchvision's MNASNet (the paper's B1, Figure 7 without SE): stem conv 3x3 (32),
# SepConv to 16, then these six stacks, then the 1x1 conv to 1280. (torchvision's
# ``_stack(in, out, kernel, stride, expansion, repeats)`` arguments.)
TORCHVISION_MNASNET_ROWS: tuple[StageRow, ...] = (
    # t  out  x  s  k
    R(3,  24, 3, 2, 3),
    R(3,  40, 3, 2, 5),
    R(6,  80, 3, 2, 5),
    R(6,  96, 2, 1, 3),
    R(6, 192, 4, 2, 5),
    R(6, 320, 1, 1, 3),
)
TORCHVISION_SEPCONV_CHANNELS = 16
# torchvision: "Paper suggests 0.9997 momentum, for TensorFlow" -> PyTorch 1 - 0.9997.
TORCHVISION_MNASNET_NORM = BatchNormConfig(eps=1e-5, momentum=1 - 0.9997)
del R


def _a1_squeeze(in_channels: int, hidden: int) -> int:
    """The TensorFlow reference's SE squeeze: a quarter of the block's *input* channels."""
    return max(1, int(in_channels * 0.25))


def resolve_a1_blocks(width_mult: float) -> list[InvertedResidualConfig]:
    """Every MnasNet-A1 block, with channels scaled by ``width_mult`` (rounded to 8)."""
    stages = expand_stages(
        MNASNET_A1_ROWS,
        make_divisible(MNASNET_STEM_CHANNELS * width_mult),
        width_mult,
        activation="RE",
        se_channels=_a1_squeeze,
        se_gate="sigmoid",
    )
    return [block for stage in stages for block in stage]


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
        layers += [InvertedResidual(block, norm) for block in blocks]
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

    def __init__(self, config: InvertedResidualConfig, norm: BatchNormConfig) -> None:
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
        stacks = expand_stages(TORCHVISION_MNASNET_ROWS, sepconv, alpha, activation="RE")
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
