"""A published cell, trained exactly like the searched one: the reference a search has to beat.

The 2019 kirigami study trained its own DARTS cell (``KIRIGAMI_2019``, 780,949 parameters at C36, 8 layers);
on CIFAR-10 the paper's ``DARTS_V2`` is the reference. ``baselines.fixed_cell.genotype`` names the cell; the
dataset's ``train`` settings (the final training of the searched cell) train it, so the two differ only in
the cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow_lib.config.types import FixedCellConfig, TrainConfig
from workflow_lib.training.run import run_training


def run(stage: Any, data: Any, out_dir: str | Path, checkpoint_dir: str | Path, seed: int) -> dict[str, Any]:
    cell = FixedCellConfig.from_dict(stage.settings["fixed_cell"])
    train = TrainConfig.from_dict(stage.settings["train"])
    return run_training(stage, data, cell.genotype, out_dir, checkpoint_dir, seed, method_name="fixed_cell",
                        train_config=train)
