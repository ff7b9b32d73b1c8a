"""Models of the design loop: fit on the revealed candidates, predict every candidate.

- ``ForestModel``: random forest on the 15 coarse cut bits.
- ``NetModel``: a CNN (Tiny ResNet or the DARTS cell's evaluation network) on the tiled sheet image, the
  dataset's tiling and padding, optionally subsampled with a row / column stride for speed. Trained from
  scratch each generation with the shared engine (``training.run.fit``); unrevealed targets are NaN in
  the tensor it gets, so nothing true leaks in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from sklearn.ensemble import RandomForestRegressor

from workflow_lib.design.config import DesignConfig, DesignError, NetTraining
from workflow_lib.engine import predict
from workflow_lib.kirigami import pad, tile
from workflow_lib.models.registry import build_model, darts_eval, resolve_genotype
from workflow_lib.training.run import Schedule, fit

PREDICT_BATCH = 1024


class ForestModel:
    def __init__(self, cfg: Any, patterns: np.ndarray, threads: int):
        self.cfg = cfg
        self.features = np.asarray(patterns, dtype=np.float32).reshape(len(patterns), -1)
        self.threads = max(1, int(threads))

    def fit_predict(self, known: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
        model = RandomForestRegressor(n_estimators=self.cfg.n_estimators, max_depth=self.cfg.max_depth,
                                      min_samples_leaf=self.cfg.min_samples_leaf,
                                      max_features=self.cfg.max_features, n_jobs=self.threads, random_state=seed)
        model.fit(self.features[known], values)
        return model.predict(self.features)


@dataclass
class _Known:
    """The PreparedData fields ``fit`` reads: only revealed targets are finite."""

    y: np.ndarray
    task: str = "regression"
    out_dim: int = 1

    def digest(self) -> str:  # part of fit's checkpoint fingerprint (the design loop keeps no checkpoints)
        return hashlib.sha256(np.ascontiguousarray(self.y).tobytes()).hexdigest()[:32]


class NetModel:
    def __init__(self, build: Callable[[], nn.Module], training: NetTraining, images: torch.Tensor, device: Any,
                 name: str):
        self.build, self.images, self.device, self.name = build, images, device, name
        self.schedule = Schedule(epochs=training.epochs, batch_size=training.batch_size, lr=training.lr,
                                 momentum=training.momentum, weight_decay=training.weight_decay,
                                 grad_clip=training.grad_clip, max_steps_per_epoch=training.max_steps_per_epoch,
                                 eval_each_epoch=False)

    def fit_predict(self, known: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
        y = np.full(len(self.images), np.nan, dtype=np.float32)
        y[known] = values
        tensors = (self.images, torch.from_numpy(y))
        result = fit(self.build, _Known(y), self.schedule, known, known, self.device, None, seed,
                     model_kind="darts_eval" if self.name == "darts" else self.name,
                     name=f"design {self.name} ({len(known)} known)", tensors=tensors)
        return predict(result.model, self.images, result.task, batch_size=PREDICT_BATCH).numpy().astype(np.float64)


def candidate_images(patterns: np.ndarray, pad_rows: int, row_stride: int, col_stride: int) -> torch.Tensor:
    """(N,1,H,W) float32 sheet images as the dataset tiles them, then strided; every pattern stays distinct."""
    images = pad(tile(patterns), pad_rows)[:, None, ::row_stride, ::col_stride]
    images = np.ascontiguousarray(images)
    if np.unique(images.reshape(len(images), -1), axis=0).shape[0] != len(images):
        raise DesignError(f"design: row_stride {row_stride} / col_stride {col_stride} skip whole cuts "
                         "(the slits are 3 rows tall and 16 columns wide); use smaller strides")
    return torch.from_numpy(images.astype(np.float32))


def dataset_pad_rows(data: Any) -> int:
    """The padding the dataset used (its images are 30 + 2 * pad rows tall); checked on a few samples."""
    height = int(data.x.shape[2])
    rows = (height - 30) // 2
    sample = np.asarray(data.coarse[:8]).reshape(-1, 15)
    if height != 30 + 2 * rows or not np.array_equal(pad(tile(sample), rows), np.asarray(data.x[:8, 0])):
        raise DesignError("design: the prepared images are not the kirigami tiling of their coarse patterns")
    return rows


def build_model_for(name: str, cfg: DesignConfig, patterns: np.ndarray, images: Callable[[], torch.Tensor],
                    genotype: Any, threads: int, device: Any) -> ForestModel | NetModel:
    """The model ``name`` of design.models (``random`` has none)."""
    if name == "random_forest":
        return ForestModel(cfg.random_forest, patterns, threads)
    if name == "tiny_resnet":
        width = cfg.tiny_resnet.width
        return NetModel(lambda: build_model("tiny_resnet", 1, 1, width=width), cfg.tiny_resnet, images(), device,
                        name)
    if name == "darts":
        if cfg.darts.genotype is None and genotype is None:
            raise DesignError("design: models include darts, design.darts.genotype is null and no genotype file "
                             "(the search's genotype.json) was given")
        geno = resolve_genotype(cfg.darts.genotype or genotype)
        d = cfg.darts
        return NetModel(lambda: darts_eval(1, 1, genotype=geno, C=d.C, layers=d.layers, auxiliary=False), d,
                        images(), device, name)
    raise AssertionError(f"design: no model {name!r}")
