"""Give the loss the feature map it needs: ``(logits, features)`` from one forward call.

Zoo models split their forward into ``forward_features(x)`` (the last conv map, before
pooling) and ``forward_head(features)``. Any other ``nn.Module`` can be used by naming
the module whose output is that map (``feature_module="features.12"``, a name from
``model.named_modules()``); a forward hook captures it.

The wrapper is what DDP wraps, so the DDP forward (which arms the gradient all-reduce)
is the only entry point the training loop calls.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilebench.errors import UsageError


class ModelWithFeatures(nn.Module):
    """``forward(x) -> (logits, features)`` around ``model`` (which it holds as ``.model``)."""

    def __init__(self, model: nn.Module, feature_module: str | None = None) -> None:
        super().__init__()
        self.model = model
        self._captured: torch.Tensor | None = None
        self._capturing = False  # only inside our forward, not when the model runs alone
        self._hook = None
        if feature_module is not None:
            modules = dict(model.named_modules())
            if feature_module not in modules:
                names = ", ".join(n for n in list(modules)[1:8] if n)
                raise UsageError(
                    f"the model has no module named {feature_module!r} to take features from "
                    f"(names look like: {names}, ...)"
                )
            self._hook = modules[feature_module].register_forward_hook(self._capture)
        elif not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
            raise UsageError(
                f"{type(model).__name__} has no forward_features/forward_head: name the module "
                "whose output is the last conv feature map with --feature-module"
            )

    def _capture(self, module: nn.Module, args: object, output: torch.Tensor) -> None:
        if self._capturing:
            self._captured = output

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._hook is None:
            features = self.model.forward_features(x)
            return self.model.forward_head(features), features
        self._captured, self._capturing = None, True
        try:
            logits = self.model(x)
        finally:
            self._capturing = False
        features, self._captured = self._captured, None
        if not isinstance(features, torch.Tensor):
            raise UsageError("the feature module did not run (or returned no tensor) during forward")
        return logits, features
