"""Models of the design loop: fit on the revealed designs only, predict every candidate (mean and spread).

The fit API is where label leakage is ruled out by construction: ``fit_predict(known, values, seed)`` gets
the ids of the designs a run revealed and their values, nothing else carries a label (the models hold the
candidates' inputs, never a target).

- ``ForestModel``: scikit-learn random forest on the space's features (kirigami: the 15 coarse cut bits).
  Spread: the standard deviation of the trees' predictions (as SMAC's random-forest surrogate: Hutter, Hoos
  and Leyton-Brown, LION 2011).
- ``NetModel``: ``ensemble`` networks (Tiny ResNet or the DARTS cell's evaluation network) on the candidates'
  (strided) images, each trained from scratch every generation with the shared engine (``training.fit``)
  from its own seed; mean and standard deviation over the members (a deep ensemble: Lakshminarayanan,
  Pritzel and Blundell, NeurIPS 2017). One member gives no spread.
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
from workflow_lib.models.registry import build_model, darts_eval, resolve_genotype
from workflow_lib.training.run import Schedule, fit

PREDICT_BATCH = 1024
MEMBER_SEED_STRIDE = 7919  # ensemble member m trains from seed + m * stride (distinct across generations)


@dataclass(frozen=True)
class Prediction:
    mean: np.ndarray  # (N,) float64, every candidate
    std: np.ndarray | None  # (N,) float64, or None without an ensemble


class ForestModel:
    def __init__(self, cfg: Any, features: np.ndarray, threads: int):
        self.cfg = cfg
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.threads = max(1, int(threads))

    def fit_predict(self, known: np.ndarray, values: np.ndarray, seed: int) -> Prediction:
        model = RandomForestRegressor(n_estimators=self.cfg.n_estimators, max_depth=self.cfg.max_depth,
                                      min_samples_leaf=self.cfg.min_samples_leaf,
                                      max_features=self.cfg.max_features, n_jobs=self.threads, random_state=seed)
        model.fit(self.features[known], np.asarray(values, dtype=np.float64))
        mean = model.predict(self.features)
        if len(model.estimators_) < 2:
            return Prediction(mean, None)
        trees = np.stack([tree.predict(self.features, check_input=False) for tree in model.estimators_])
        return Prediction(mean, trees.std(axis=0))


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
                 name: str, ensemble: int):
        self.build, self.images, self.device, self.name, self.ensemble = build, images, device, name, ensemble
        self.schedule = Schedule(epochs=training.epochs, batch_size=training.batch_size, lr=training.lr,
                                 momentum=training.momentum, weight_decay=training.weight_decay,
                                 grad_clip=training.grad_clip, max_steps_per_epoch=training.max_steps_per_epoch,
                                 eval_each_epoch=False)

    def _member(self, known: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
        y = np.full(len(self.images), np.nan, dtype=np.float32)  # NaN: never a label for an unrevealed design
        y[known] = values
        result = fit(self.build, _Known(y), self.schedule, known, known, self.device, None, seed,
                     model_kind="darts_eval" if self.name == "darts" else self.name,
                     name=f"design {self.name} ({len(known)} known)", tensors=(self.images, torch.from_numpy(y)))
        return predict(result.model, self.images, result.task, batch_size=PREDICT_BATCH).numpy().astype(np.float64)

    def fit_predict(self, known: np.ndarray, values: np.ndarray, seed: int) -> Prediction:
        members = np.stack([self._member(known, values, seed + m * MEMBER_SEED_STRIDE) for m in range(self.ensemble)])
        return Prediction(members.mean(axis=0), members.std(axis=0) if self.ensemble > 1 else None)


def picker_model(name: str, ensemble: int, cfg: DesignConfig, space: Any, images: Callable[[], torch.Tensor],
                 threads: int, device: Any) -> ForestModel | NetModel:
    """The model of a picker (``random`` has none): ``images()`` builds the networks' inputs once."""
    if name == "random_forest":
        return ForestModel(cfg.random_forest, space.features, threads)
    if name == "tiny_resnet":
        width, channels = cfg.tiny_resnet.width, int(images().shape[1])
        return NetModel(lambda: build_model("tiny_resnet", channels, 1, width=width), cfg.tiny_resnet, images(),
                        device, name, ensemble)
    if name == "darts":
        if not cfg.darts.genotype:
            raise DesignError("design: a darts picker needs a named cell (design.darts.genotype or "
                              "train.genotype); the searched cell saw labels the loop treats as unsimulated")
        geno, d, channels = resolve_genotype(cfg.darts.genotype), cfg.darts, int(images().shape[1])
        return NetModel(lambda: darts_eval(channels, 1, genotype=geno, C=d.C, layers=d.layers, auxiliary=False), d,
                        images(), device, name, ensemble)
    raise AssertionError(f"design: no model {name!r}")
