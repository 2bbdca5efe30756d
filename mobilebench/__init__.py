"""mobilebench: what a compact image classifier's accuracy costs in latency on real phones.

The model registry is re-exported here (``mobilebench.create_model``,
``mobilebench.list_models``, ``mobilebench.register_model``). It is loaded on first use
so that importing the package (and starting the CLI) does not import torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_REGISTRY_EXPORTS = ("create_model", "list_models", "register_model")


def __getattr__(name: str):
    if name in _REGISTRY_EXPORTS:
        from mobilebench import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'mobilebench' has no attribute {name!r}")


__all__ = ["__version__", *_REGISTRY_EXPORTS]
