"""The training core: Bias Loss, data, the paper's recipes, the loop, evaluation.

- :class:`BiasLoss` (``bias_loss.py``): the paper's loss, ``loss(logits, targets, features)``.
- :class:`ModelWithFeatures` (``features.py``): logits and the feature map from one forward.
- ``datasets.py`` / ``cifar.py`` / ``transforms.py`` / ``data.py``: ImageNet-layout
  folders, CIFAR-100, scikit-learn digits; the recipes' augmentations; resumable loaders.
- :class:`Recipe` and :data:`RECIPES` (``recipes.py``), optimizers and the lr schedule
  (``optim.py``), :class:`ModelEma` (``ema.py``).
- :func:`train` / :class:`TrainConfig` (``loop.py``), checkpoints (``checkpoint.py``),
  process groups (``distributed.py``).
- :func:`evaluate` / :func:`evaluate_named` (``evaluate.py``).

Importing this package imports torch.
"""

from __future__ import annotations

from mobilebench.train.bias_loss import BiasLoss
from mobilebench.train.data import DataConfig
from mobilebench.train.ema import ModelEma
from mobilebench.train.evaluate import Accuracy, EvalRequest, EvalResult, evaluate, evaluate_named
from mobilebench.train.features import ModelWithFeatures
from mobilebench.train.loop import TrainConfig, TrainResult, train
from mobilebench.train.recipes import RECIPES, Recipe, build_recipe, get_recipe

__all__ = [
    "RECIPES",
    "Accuracy",
    "BiasLoss",
    "DataConfig",
    "EvalRequest",
    "EvalResult",
    "ModelEma",
    "ModelWithFeatures",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "build_recipe",
    "evaluate",
    "evaluate_named",
    "get_recipe",
    "train",
]
