"""Final training of a DARTS cell's evaluation network: the ``train`` step and the random search's winner.

- ``run_training(stage, data, genotype, out_dir, checkpoint_dir, seed, method_name="darts",
  train_config=None) -> dict`` trains the DARTS evaluation network of ``genotype`` (TrainConfig: SGD momentum
  without Nesterov, cosine lr -> lr_min, weight decay, grad-norm clip, auxiliary head weight, drop path ramped
  ``drop_path_prob * epoch / epochs`` (0-based epoch, as in the DARTS code), cutout when ``cutout_length > 0``)
  on ``data.train_index``, evaluates on ``data.test_index`` after every epoch (the test curve, never used for
  selection) and writes ``metrics.json``, ``curves.csv``, ``predictions.csv`` into ``out_dir``. Returns the
  metrics document. ``genotype``: Genotype | dict | GENOTYPES name | genotype.json path | None (then
  ``TrainConfig.genotype`` must name one). ``train_config`` overrides the stage's settings.
- The loop itself is ``training.fitting.fit``; the artifacts ``training.artifacts``; the optimiser and schedule
  ``training.schedule`` (re-exported here as the package's public face).

Checkpoints: ``checkpoint_dir/ckpt.pt`` after every epoch (kept after success; it lives outside the declared
outputs). A rerun resumes and ends bitwise identical on the CPU; a finished checkpoint just re-evaluates.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch.nn as nn

from workflow_lib.config.types import TrainConfig
from workflow_lib.engine import device_label, fingerprint_of
from workflow_lib.models.registry import darts_eval, resolve_genotype
from workflow_lib.training.artifacts import metrics_block, write_method_artifacts
from workflow_lib.training.fitting import (  # noqa: F401 - the training package's public face
    FitResult,
    data_tensors,
    device_identity,
    fit,
    run_fingerprint,
)
from workflow_lib.training.schedule import Schedule

log = logging.getLogger("workflow_lib.training")


def train_settings(stage: Any) -> dict[str, Any]:
    settings = stage.settings
    if isinstance(settings, dict) and "random_search" in settings and "train" in settings:
        return settings["train"]
    return settings


def run_training(
    stage: Any,
    data: Any,
    genotype: Any,
    out_dir: str | Path,
    checkpoint_dir: str | Path,
    seed: int,
    method_name: str = "darts",
    train_config: TrainConfig | dict | None = None,
) -> dict[str, Any]:
    if train_config is None:
        cfg = TrainConfig.from_dict(train_settings(stage))
    elif isinstance(train_config, dict):
        cfg = TrainConfig.from_dict(train_config)
    else:
        cfg = train_config
    if genotype is None:
        if cfg.genotype is None:
            raise ValueError("run_training: no genotype given and train.genotype is null")
        genotype = cfg.genotype
    genotype = resolve_genotype(genotype)
    if cfg.cutout_length > 0 and getattr(stage, "kind", None) == "kirigami":
        log.warning("cutout_length=%d on a kirigami dataset (the 2019 study used none)", cfg.cutout_length)
    schedule = Schedule.from_train_config(cfg)

    def build() -> nn.Module:
        return darts_eval(int(data.in_channels), int(data.out_dim), genotype=genotype, C=cfg.C,
                          layers=cfg.layers, auxiliary=cfg.auxiliary)

    t0 = time.perf_counter()
    result = fit(build, data, schedule, data.train_index, data.test_index, stage.device,
                 Path(checkpoint_dir) / "ckpt.pt", seed, name=f"{method_name} seed {seed}",
                 fingerprint=fingerprint_of(cfg.to_dict(), genotype.to_dict(), int(seed), method_name),
                 augment=getattr(stage, "augment", None), model_kind="darts_eval")
    log.info("%s seed %d: test %s (%.1f s)", method_name, seed,
             {k: round(v, 4) for k, v in metrics_block(result.evaluation).items()}, time.perf_counter() - t0)
    return write_method_artifacts(
        out_dir, method=method_name, dataset=stage.dataset, seed=seed, task=result.task,
        parameters=result.parameters, train_seconds=result.train_seconds, device=device_label(result.device),
        epochs=len(result.history), test=metrics_block(result.evaluation), config=cfg.to_dict(),
        stage_document=stage.to_dict(), history=result.history, index=result.eval_index,
        y_true=result.y_true, y_pred=result.predictions, genotype=genotype.to_dict(), budget=result.budget,
    )


def train_step(stage: Any, data_path: str | Path, genotype_path: str | Path | None, out_dir: str | Path,
               checkpoint_dir: str | Path, seed: int) -> dict[str, Any]:
    """CLI entry (``python -m workflow_lib train``): the genotype is ``train.genotype`` when the config names one
    (a GENOTYPES name), else the search's genotype.json given as ``genotype_path``."""
    from workflow_lib.datasets.prepared import PreparedData

    cfg = TrainConfig.from_dict(train_settings(stage))
    if cfg.genotype is not None:
        if genotype_path is not None:
            log.info("train.genotype is %r: using it, not %s", cfg.genotype, genotype_path)
        genotype: Any = cfg.genotype
    elif genotype_path is not None:
        genotype = Path(genotype_path)
    else:
        raise ValueError("train: train.genotype is null (use the search's cell) but no --genotype file was given")
    data = PreparedData.load(data_path)
    return run_training(stage, data, genotype, out_dir, checkpoint_dir, seed, method_name="darts", train_config=cfg)
