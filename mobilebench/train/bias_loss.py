"""Bias Loss (Abrahamyan et al., "Bias Loss for Mobile Neural Networks", ICCV 2021, eq. 1-6).

Each sample's cross-entropy is weighted by ``z(v) = exp(alpha * v) - beta`` where ``v`` is
the variance of the sample's last convolutional feature map (before pooling), scaled with
the batch's minimum and maximum variance. Samples whose features carry more information
(high variance) are weighted up, so that low-information samples, on which a compact
network cannot be confident, bias the optimisation less.

Conventions:

- The variance is over all ``c*h*w`` values of a sample with the ``n - 1`` denominator,
  computed in float32 even under fp16/bf16 autocast (a half-precision variance of ~10^5
  values loses most of its digits).
- The weights are constants for autograd: the features are detached before the variance,
  so the gradient is exactly that of a cross-entropy with fixed per-sample weights.
- ``normalization="batch"`` (the paper): ``v = (var - min) / (max - min)`` over the batch.
- ``normalization="running_min"`` (the authors' code default, called 'global' there):
  ``v = (var - running_min) / (max - min)`` where ``running_min`` is the smallest variance
  seen in any batch so far, including this one. It starts at 1e5, is never reset, and is a
  buffer, so it travels with checkpoints and resumes exactly. Values can exceed 1.
- Equal variances (``max == min``, e.g. a batch of one, or constant features): the
  paper's formula divides by zero. We give every sample ``v = 0``, i.e. weight
  ``1 - beta``: finite, the same for every sample (plain cross-entropy up to a constant
  factor), in both modes.
- Under DDP with ``sync_distributed=True`` the batch minimum and maximum (and the running
  minimum) are reduced over all processes, so a 2-GPU run normalises over the global batch
  exactly like one process holding the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMALIZATIONS = ("batch", "running_min")
RUNNING_MIN_START = 1e5


class BiasLoss(nn.Module):
    """``loss(logits, targets, features)``: mean of ``z(v_i) * CE_i`` (see module docs)."""

    running_min: torch.Tensor

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.3,
        normalization: str = "batch",
        *,
        sync_distributed: bool = False,
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {normalization!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.normalization = normalization
        self.sync_distributed = sync_distributed
        # float64 so that the running minimum compares exactly across resumes and ranks.
        self.register_buffer("running_min", torch.tensor(RUNNING_MIN_START, dtype=torch.float64))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, normalization={self.normalization!r}"

    @torch.no_grad()
    def feature_variance(self, features: torch.Tensor) -> torch.Tensor:
        """Per-sample variance (n - 1 denominator) of the flattened features, float32."""
        flat = features.detach().reshape(features.shape[0], -1).float()
        if flat.shape[1] < 2:
            raise ValueError("Bias Loss needs at least 2 feature values per sample to take a variance")
        return torch.var(flat, dim=1, correction=1)

    @torch.no_grad()
    def sample_weights(self, features: torch.Tensor) -> torch.Tensor:
        """The weights ``z(v)`` (float32, no gradient); updates ``running_min`` in that mode."""
        var = self.feature_variance(features)
        lo, hi = var.min(), var.max()
        if self.sync_distributed and _distributed_active():
            # One reduction for both: max(-min) == -min.
            both = torch.stack([-lo, hi])
            torch.distributed.all_reduce(both, op=torch.distributed.ReduceOp.MAX)
            lo, hi = -both[0], both[1]
        if self.normalization == "running_min":
            self.running_min.copy_(torch.minimum(self.running_min, lo.to(self.running_min)))
            reference = self.running_min.to(var.dtype)
        else:
            reference = lo
        spread = hi - lo
        # Equal variances: v = 0 for every sample (documented above), without ever
        # computing 0/0 (torch.where evaluates both branches).
        safe_spread = torch.where(spread > 0, spread, torch.ones_like(spread))
        v = torch.where(spread > 0, (var - reference) / safe_spread, torch.zeros_like(var))
        return torch.exp(self.alpha * v) - self.beta

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] != logits.shape[0]:
            raise ValueError(f"features have {features.shape[0]} samples but logits have {logits.shape[0]}")
        weights = self.sample_weights(features)
        per_sample = F.cross_entropy(logits.float(), targets, reduction="none")
        return (weights * per_sample).mean()


def _distributed_active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()
