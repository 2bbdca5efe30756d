"""Building blocks shared by the MobileNet-family architectures of the zoo.

Every architecture is a table of block rows (each tied to its paper) that resolves to
:class:`InvertedResidualConfig` blocks. The module layouts here follow torchvision
(``Conv2dNormActivation`` as a ``Sequential(conv, bn, act)``, ``SqueezeExcitation`` with
``fc1``/``fc2`` 1x1 convolutions, ``InvertedResidual.block``), so that models built from
them load torchvision's published state_dicts key for key. Architectures whose published
checkpoints name their layers otherwise (MobileNetV2's ``conv``, SkipNet's, GhostNet's,
torchvision's MNASNet) keep a block module of that layout next to their definition, built
from the same config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# Activation names as the MobileNetV3 paper's tables write them.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "RE": nn.ReLU,
    "RE6": nn.ReLU6,
    "HS": nn.Hardswish,
}


def activation_layer(name: str) -> type[nn.Module]:
    """The activation module class for a table name ("RE", "RE6", "HS")."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (the MobileNet rule).

    The result is at least ``min_value`` (default: ``divisor``) and never more than 10%
    below ``value``; this is the rounding of the TensorFlow MobileNet code that torchvision
    and the SkipNet authors both use, so channel counts agree with published weights.
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BatchNormConfig:
    """BatchNorm hyper-parameters of an architecture (PyTorch's momentum convention)."""

    eps: float = 1e-5
    momentum: float = 0.1

    def make(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation, as children ``0``, ``1``, ``2``.

    Same layout as torchvision's ``Conv2dNormActivation``; padding keeps the spatial size
    at stride 1 ("same" padding for odd kernels). ``activation=None`` leaves the
    activation out (a linear projection).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
        norm: BatchNormConfig = BatchNormConfig(),
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            norm.make(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate (MobileNetV3, Howard et al. 2019).

    Global average pool -> 1x1 conv ``fc1`` -> ReLU -> 1x1 conv ``fc2`` -> hard-sigmoid,
    and the input is multiplied by the gate per channel. Using 1x1 convolutions (with
    bias) instead of Linear layers is torchvision's layout; the arithmetic is the same.
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        *,
        scale_activation: type[nn.Module] = nn.Hardsigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = scale_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.avgpool(x)
        scale = self.activation(self.fc1(scale))
        scale = self.scale_activation(self.fc2(scale))
        return x * scale


#: SE gates by name: the hard sigmoid of MobileNetV3 (and SkipNet, GhostNet), or the
#: sigmoid of MnasNet and the original squeeze-and-excitation.
SE_GATES: dict[str, type[nn.Module]] = {"hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid}


@dataclass(frozen=True)
class InvertedResidualConfig:
    """One inverted-residual (MBConv) block, with its final channel counts (after width
    scaling): the block every architecture of the zoo is made of, as torchvision's
    ``InvertedResidualConfig`` describes MobileNetV3's.

    1x1 expansion to ``hidden_channels``, depthwise ``kernel`` x ``kernel`` at ``stride``,
    squeeze-and-excitation when ``se_channels`` (its squeeze width) is set, with the gate
    ``se_gate`` (a key of :data:`SE_GATES`), then a linear 1x1 projection; a residual
    connection at stride 1 with equal widths. ``activation`` is a key of
    :data:`ACTIVATIONS`. The module layouts differ per architecture (their published
    checkpoints name the layers differently); every one of them is built from this.
    """

    in_channels: int
    kernel: int
    hidden_channels: int
    out_channels: int
    stride: int
    activation: str = "RE"
    se_channels: int | None = None
    se_gate: str = "hardsigmoid"

    @property
    def use_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class StageRow:
    """One row of a MobileNetV2 / MnasNet stage table: ``repeats`` (n) blocks with
    expansion ``t``, output channels ``out`` (c, at width 1.0), the first at ``stride``
    (s), the others at stride 1; MnasNet adds the ``kernel`` and whether the stage has SE.
    """

    expansion: float
    out: int
    repeats: int
    stride: int
    kernel: int = 3
    se: bool = False


def expand_stages(
    rows: tuple[StageRow, ...],
    in_channels: int,
    width_mult: float,
    *,
    activation: str,
    se_channels: Callable[[int, int], int] | None = None,
    se_gate: str = "hardsigmoid",
) -> list[list[InvertedResidualConfig]]:
    """The blocks of a stage table, stage by stage, for a model whose first stage gets
    ``in_channels``. Output widths are ``make_divisible(out * width_mult)``; the hidden
    width is ``round(in * t)`` of each block's actual input. ``se_channels(in, hidden)``
    gives the SE squeeze width of rows with SE."""
    stages = []
    for row in rows:
        out = make_divisible(row.out * width_mult)
        stage = []
        for index in range(row.repeats):
            hidden = int(round(in_channels * row.expansion))
            squeeze = se_channels(in_channels, hidden) if row.se and se_channels is not None else None
            stage.append(
                InvertedResidualConfig(
                    in_channels=in_channels,
                    kernel=row.kernel,
                    hidden_channels=hidden,
                    out_channels=out,
                    stride=row.stride if index == 0 else 1,
                    activation=activation,
                    se_channels=squeeze,
                    se_gate=se_gate,
                )
            )
            in_channels = out
        stages.append(stage)
    return stages


class InvertedResidual(nn.Module):
    """The block in torchvision's MobileNetV3 layout: ``block`` = [expand] dw [se] project,
    each a :class:`ConvBNAct` (the SE a :class:`SqueezeExcitation`).

    The 1x1 expansion is left out when ``hidden_channels == in_channels`` (MobileNetV3's
    first block, MnasNet's SepConv), as in the papers and torchvision.
    """

    def __init__(self, config: InvertedResidualConfig, norm: BatchNormConfig = BatchNormConfig()) -> None:
        super().__init__()
        act = activation_layer(config.activation)
        layers: list[nn.Module] = []
        if config.hidden_channels != config.in_channels:
            layers.append(ConvBNAct(config.in_channels, config.hidden_channels, 1, activation=act, norm=norm))
        layers.append(
            ConvBNAct(
                config.hidden_channels,
                config.hidden_channels,
                config.kernel,
                stride=config.stride,
                groups=config.hidden_channels,
                activation=act,
                norm=norm,
            )
        )
        if config.se_channels is not None:
            gate = SE_GATES[config.se_gate]
            layers.append(SqueezeExcitation(config.hidden_channels, config.se_channels, scale_activation=gate))
        layers.append(ConvBNAct(config.hidden_channels, config.out_channels, 1, activation=None, norm=norm))
        self.block = nn.Sequential(*layers)
        self.use_residual = config.use_residual
        self.out_channels = config.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


def init_mobilenet_weights(model: nn.Module) -> None:
    """The MobileNet initialisation torchvision and the SkipNet authors both use.

    Conv weights ~ N(0, 2 / (k*k*out_channels)) (He, fan-out), conv biases 0; BatchNorm
    weight 1, bias 0; Linear weights ~ N(0, 0.01), bias 0.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


class ZooModel(nn.Module):
    """Base of every zoo classifier: ``forward(x) = forward_head(forward_features(x))``.

    ``forward_features`` returns the last convolution's feature map before pooling
    (N x C x H x W, what Bias Loss reads); ``forward_head`` pools it and classifies.
    Subclasses set ``num_features`` (C) and ``num_classes``.
    """

    num_features: int
    num_classes: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def check_width_mult(width_mult: object) -> float:
    """A width multiplier as a float, or ValueError for anything but a positive number."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
    return float(width_mult)


def check_dropout(dropout: object) -> float:
    """A dropout probability as a float in [0, 1), or ValueError."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return float(dropout)
