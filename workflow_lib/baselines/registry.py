"""BASELINES: name -> run(stage, data, out_dir, checkpoint_dir, seed) -> metrics document (dict).

Each run writes ``metrics.json``, ``curves.csv`` and ``predictions.csv`` into ``out_dir`` (random_search also
``candidates.json``); ``checkpoint_dir`` holds resumable state outside the declared outputs.
"""

from __future__ import annotations

from typing import Any, Callable

from workflow_lib import methods
from workflow_lib.baselines import fixed_cell, random_forest, random_search
from workflow_lib.baselines.cnn import run_resnet18, run_tiny_resnet

BaselineRun = Callable[..., dict[str, Any]]

BASELINES: dict[str, BaselineRun] = {
    "random_forest": random_forest.run,
    "resnet18": run_resnet18,
    "tiny_resnet": run_tiny_resnet,
    "random_search": random_search.run,
    "fixed_cell": fixed_cell.run,
}
if tuple(BASELINES) != methods.BASELINES:  # workflow_lib.methods is the one list the config and rules use
    raise ImportError(f"BASELINES {tuple(BASELINES)} differ from workflow_lib.methods.BASELINES {methods.BASELINES}")


def run_baseline(name: str, stage: Any, data: Any, out_dir, checkpoint_dir, seed: int) -> dict[str, Any]:
    try:
        runner = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}") from None
    return runner(stage, data, out_dir, checkpoint_dir, seed)


def baseline_step(name: str, stage: Any, data_path, out_dir, checkpoint_dir, seed: int) -> dict[str, Any]:
    """CLI entry (``python -m workflow_lib baseline --method NAME``): load prepared.npz and run the baseline."""
    from workflow_lib.datasets.prepared import PreparedData

    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return run_baseline(name, stage, PreparedData.load(data_path), out_dir, checkpoint_dir, seed)
