"""Exponential moving average of a model's weights (the weights the paper evaluates).

Updated after every optimizer step: ``ema = decay * ema + (1 - decay) * current`` for
every floating-point parameter and buffer (BatchNorm running statistics included);
integer buffers (``num_batches_tracked``) are copied. With the ImageNet recipe's decay of
0.99995 the average spans about 20 000 steps (about 8 epochs at batch 512), so early in
training the EMA is far behind the live weights; both are evaluated and checkpointed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = model.state_dict()
        for name, averaged in self.module.state_dict().items():
            value = current[name].detach()
            if averaged.is_floating_point():
                averaged.lerp_(value.to(averaged.dtype), 1.0 - self.decay)
            else:
                averaged.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state_dict)
