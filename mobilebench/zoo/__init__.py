"""The model zoo: architectures, the name registry, checkpoints, model cards.

- :func:`create_model` / :func:`list_models` / :func:`register_model`: the registry
  (``registry.py``); every architecture module in this package registers its names.
- :func:`load_checkpoint`: safe weight loading with foreign wrappers and prefixes
  (``checkpoint.py``).
- ``cards.py``: the model cards in ``models/*.toml``; ``resolve.py``: turning a user's
  model NAME into a buildable :class:`~mobilebench.zoo.resolve.ResolvedModel`.

Importing this package does not import torch; building a model does.
"""

from __future__ import annotations

from mobilebench.zoo.checkpoint import load_checkpoint
from mobilebench.zoo.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "load_checkpoint", "register_model"]
