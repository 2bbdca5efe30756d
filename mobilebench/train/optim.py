"""Optimizers and the learning-rate schedule of the recipes.

:class:`RMSpropTF` is RMSProp as TensorFlow (and so the EfficientNet/MobileNetV3 recipes)
defines it, which differs from ``torch.optim.RMSprop`` in three ways that matter with
eps = 1e-3: epsilon is added inside the square root, the squared-gradient average starts
at 1 rather than 0 (no huge first steps), and the learning rate is applied inside the
momentum buffer (so a change of lr does not rescale the accumulated velocity).

:class:`LrSchedule` is a pure function of the training position (epoch, batch in epoch)
and is applied every step; its state in a checkpoint is that position.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from mobilebench.train.recipes import Recipe


class RMSpropTF(torch.optim.Optimizer):
    """TF-style RMSProp with momentum and coupled (L2) weight decay.

    Per parameter ``p`` with gradient ``g`` (plus ``weight_decay * p``):
    ``ms = decay * ms + (1 - decay) * g^2`` (``ms`` starts at 1),
    ``mom = momentum * mom + lr * g / sqrt(ms + eps)``, ``p -= mom``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        decay: float = 0.9,
        momentum: float = 0.9,
        eps: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0 <= decay < 1 or momentum < 0:
            raise ValueError("RMSpropTF: invalid hyper-parameter")
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, decay, momentum = group["lr"], group["decay"], group["momentum"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if weight_decay:
                    grad = grad.add(p, alpha=weight_decay)
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                square_avg = state["square_avg"]
                square_avg.mul_(decay).addcmul_(grad, grad, value=1 - decay)
                denom = square_avg.add(eps).sqrt_()
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).addcdiv_(grad, denom, value=lr)
                    p.sub_(buf)
                else:
                    p.addcdiv_(grad, denom, value=-lr)
        return loss


def parameter_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """One group, or two when 1-d parameters (biases, norm scales/shifts) skip weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias or weight_decay == 0:
        return [{"params": params, "weight_decay": weight_decay}]
    decayed = [p for p in params if p.ndim > 1]
    plain = [p for p in params if p.ndim <= 1]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    groups = parameter_groups(model, recipe.weight_decay, recipe.decay_norm_and_bias)
    if recipe.optimizer == "rmsprop_tf":
        return RMSpropTF(
            groups, lr=recipe.lr, decay=recipe.rmsprop_decay, momentum=recipe.momentum, eps=recipe.rmsprop_eps
        )
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)


class LrSchedule:
    """The recipe's learning rate at a fractional epoch ``t`` (applied per step).

    Warm-up (``t < warmup_epochs``): linear from ``warmup_lr`` to ``lr``. Then
    ``exponential_step``: ``lr * lr_decay ** floor(t / lr_decay_epochs)``; ``multistep``:
    ``lr * lr_decay ** (number of milestones <= t)``. ``t`` counts from 0 in both, so
    warm-up overrides, but does not shift, the decay.
    """

    def __init__(self, recipe: Recipe, steps_per_epoch: int) -> None:
        self.recipe = recipe
        self.steps_per_epoch = steps_per_epoch

    def lr_at_epoch(self, t: float) -> float:
        r = self.recipe
        if t < r.warmup_epochs:
            return r.warmup_lr + (r.lr - r.warmup_lr) * t / r.warmup_epochs
        if r.lr_schedule == "exponential_step":
            return r.lr * r.lr_decay ** math.floor(t / r.lr_decay_epochs)
        return r.lr * r.lr_decay ** sum(1 for m in r.lr_milestones if t >= m)

    def lr_at(self, epoch: int, batch: int) -> float:
        return self.lr_at_epoch(epoch + batch / self.steps_per_epoch)

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, batch: int) -> float:
        lr = self.lr_at(epoch, batch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
