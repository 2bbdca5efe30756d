"""Building blocks shared by the MobileNet-family architectures of the zoo.

The module layouts here follow torchvision (``Conv2dNormActivation`` as a
``Sequential(conv, bn, act)``, ``SqueezeExcitation`` with ``fc1``/``fc2`` 1x1 convolutions,
``InvertedResidual.block``), so that models built from them load torchvision's published
state_dicts key for key. Architectures whose published checkpoints use another layout
(SkipNet) keep their own block classes next to their definition.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class InvertedResidualConfig:
    """One inverted-residual block with its final channel counts (after width scaling).

    ``activation`` is a key of :data:`ACTIVATIONS`. ``se_channels`` is the squeeze width
    of the SE layer, or ``None`` for no SE.
    """

    in_channels: int
    kernel: int
    hidden_channels: int
    out_channels: int
    se_channels: int | None
    activation: str
    stride: int

    @property
    def use_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


class InvertedResidual(nn.Module):
    """MobileNetV3 bottleneck in torchvision's layout: ``block`` = [expand] dw [se] project.

    The 1x1 expansion is left out when ``hidden_channels == in_channels`` (MobileNetV3's
    first block), as in the paper and torchvision. A residual connection is added when the
    block keeps stride 1 and the channel count.
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
            layers.append(SqueezeExcitation(config.hidden_channels, config.se_channels))
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
