"""Bias Loss against hand-computed values, its gradient, degenerate batches and autocast."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mobilebench.errors import UsageError
from mobilebench.train import BiasLoss, ModelWithFeatures


def alternating(scales: list[float]) -> torch.Tensor:
    """Samples [x, -x, x, -x] as 1 x 2 x 2 maps: variance (n - 1 denominator) 4 x^2 / 3."""
    return torch.tensor([[x, -x, x, -x] for x in scales], dtype=torch.float32).reshape(len(scales), 1, 2, 2)


def z(v: float, alpha: float = 0.3, beta: float = 0.3) -> float:
    return math.exp(alpha * v) - beta


def test_batch_normalisation_hand_computed() -> None:
    # Variances 0, 4/3, 16/3 -> scaled to 0, 0.25, 1.
    features = alternating([0.0, 1.0, 2.0])
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [0.0, 0.0]])
    targets = torch.tensor([0, 0, 1])
    ce = [math.log(2.0), math.log(4.0 / 3.0), math.log(2.0)]
    expected = (z(0.0) * ce[0] + z(0.25) * ce[1] + z(1.0) * ce[2]) / 3

    loss = BiasLoss()(logits, targets, features)

    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert BiasLoss().sample_weights(features).tolist() == pytest.approx([0.7, z(0.25), z(1.0)], rel=1e-6)


def test_alpha_beta_are_used() -> None:
    features = alternating([0.0, 2.0])
    weights = BiasLoss(alpha=1.0, beta=0.5).sample_weights(features)
    assert weights.tolist() == pytest.approx([0.5, math.e - 0.5], rel=1e-6)


def test_running_min_reproduces_the_authors_global_mode() -> None:
    loss = BiasLoss(normalization="running_min")
    assert loss.running_min.item() == 1e5  # the authors' start value
    # First batch: variances 0, 4/3, 16/3; the running minimum drops to 0, so v as in batch mode.
    first = loss.sample_weights(alternating([0.0, 1.0, 2.0]))
    assert first.tolist() == pytest.approx([z(0.0), z(0.25), z(1.0)], rel=1e-6)
    assert loss.running_min.item() == 0.0
    # Second batch: variances 4/3, 16/3, 12 (spread 32/3); v = var / spread since the
    # running minimum stays 0 -> 1/8, 1/2, 9/8 (above 1, as in their code).
    second = loss.sample_weights(alternating([1.0, 2.0, 3.0]))
    assert second.tolist() == pytest.approx([z(1 / 8), z(1 / 2), z(9 / 8)], rel=1e-6)
    assert loss.running_min.item() == 0.0  # never reset
    # The paper's batch mode on the same batch: 0, 0.375, 1.
    assert BiasLoss().sample_weights(alternating([1.0, 2.0, 3.0])).tolist() == pytest.approx(
        [z(0.0), z(0.375), z(1.0)], rel=1e-6
    )


def test_running_min_starts_at_1e5_and_only_decreases() -> None:
    loss = BiasLoss(normalization="running_min")
    # Variances 4e6/3 and 16e6/3 are both above the 1e5 start, so it stays 1e5.
    weights = loss.sample_weights(alternating([1000.0, 2000.0]))
    spread = 12e6 / 3
    assert loss.running_min.item() == 1e5
    assert weights.tolist() == pytest.approx([z((4e6 / 3 - 1e5) / spread), z((16e6 / 3 - 1e5) / spread)], rel=1e-5)
    # The running minimum is a buffer: it travels with state_dict (and so with checkpoints).
    restored = BiasLoss(normalization="running_min")
    restored.load_state_dict(loss.state_dict())
    assert restored.running_min.item() == 1e5


@pytest.mark.parametrize("normalization", ["batch", "running_min"])
def test_equal_variances_give_weight_one_minus_beta(normalization: str) -> None:
    logits = torch.randn(4, 5, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 3])
    loss_fn = BiasLoss(normalization=normalization)
    # Same variance in every sample (and then a batch of one): max == min.
    for features in (alternating([1.0, -1.0, 1.0, 1.0]), alternating([3.0])):
        weights = loss_fn.sample_weights(features)
        assert torch.isfinite(weights).all()
        assert weights.tolist() == pytest.approx([0.7] * len(features))
    loss = loss_fn(logits, targets, alternating([2.0] * 4))
    assert loss.item() == pytest.approx(0.7 * F.cross_entropy(logits, targets).item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_gradient_is_weighted_cross_entropy_with_constant_weights() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 10, requires_grad=True)
    features = torch.randn(6, 8, 3, 3).mul(torch.arange(1, 7).view(6, 1, 1, 1)).requires_grad_(True)
    targets = torch.randint(0, 10, (6,))

    BiasLoss()(logits, targets, features).backward()

    weights = BiasLoss().sample_weights(features)
    reference_logits = logits.detach().clone().requires_grad_(True)
    (weights * F.cross_entropy(reference_logits, targets, reduction="none")).mean().backward()
    torch.testing.assert_close(logits.grad, reference_logits.grad, rtol=1e-6, atol=1e-7)
    assert features.grad is None  # the weights carry no gradient into the features
    assert not weights.requires_grad


def test_bf16_autocast_on_cpu() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, 3)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    x = torch.randn(8, 3, 12, 12) * torch.linspace(0.5, 4, 8).view(8, 1, 1, 1)
    targets = torch.randint(0, 10, (8,))
    loss_fn = BiasLoss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = conv(x)
        logits = head(features)
        loss = loss_fn(logits, targets, features)
    assert features.dtype == torch.bfloat16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())
    # The variance is taken in float32 of the bf16 values, so it matches a float32 run on them.
    expected = BiasLoss()(logits.detach().float(), targets, features.detach().float())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="normalization"):
        BiasLoss(normalization="global")
    with pytest.raises(ValueError, match="2 feature values"):
        BiasLoss()(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 1))
    with pytest.raises(ValueError, match="samples"):
        BiasLoss()(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(3, 4))


class Plain(nn.Module):
    """A model outside the zoo: no forward_features."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.body(x)).flatten(1))


def test_forward_hook_provides_features_for_models_outside_the_zoo() -> None:
    model = Plain()
    x = torch.randn(2, 3, 8, 8)
    logits, features = ModelWithFeatures(model, "body")(x)
    torch.testing.assert_close(features, model.body(x))
    torch.testing.assert_close(logits, model(x))
    with pytest.raises(UsageError, match="no module named 'head'"):
        ModelWithFeatures(model, "head")
    with pytest.raises(UsageError, match="--feature-module"):
        ModelWithFeatures(model)


def test_zoo_models_give_the_map_before_pooling() -> None:
    from mobilebench import create_model

    model = create_model("mobilenet_v3_small", num_classes=7, width_mult=0.5).eval()
    x = torch.randn(2, 3, 64, 64)
    logits, features = ModelWithFeatures(model)(x)
    assert features.ndim == 4 and features.shape[0] == 2
    torch.testing.assert_close(logits, model(x))
