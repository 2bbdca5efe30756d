"""Run under torchrun by test_training.py: a 2-epoch DDP run, then dump this rank's weights.

Usage: ddp_worker.py OUT_DIR DUMP_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from mobilebench import create_model
from mobilebench.train import DataConfig, TrainConfig, build_recipe, train


def main() -> None:
    out, dumps = Path(sys.argv[1]), Path(sys.argv[2])
    recipe = build_recipe(
        "digits",
        sets=["loss=bias", "bias_normalization=running_min", "ema_decay=0.9"],
        explicit={"epochs": 2, "batch_size": 64},
    )
    torch.manual_seed(0)
    model = create_model("mobilenet_v3_small", num_classes=10, width_mult=0.5)
    train(
        TrainConfig(
            arch="mobilenet_v3_small",
            arch_options={"width_mult": 0.5},
            recipe=recipe,
            data=DataConfig(kind="digits", workers=1),
            out_dir=out,
            seed=3,
        ),
        model=model,
    )
    dumps.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), dumps / f"rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    main()
