"""Random-forest baseline (scikit-learn) on the coarse 3x5 kirigami pattern (15 features) or flattened pixels.

Trains on ``data.train_index``, tests on ``data.test_index``; writes metrics.json / predictions.csv / a
one-row curves.csv. ``parameters`` in metrics.json = total number of tree nodes (a forest has no weights).
``n_jobs: -1`` uses the job's threads (``device.threads`` when > 0, else torch's thread count, which follows
OMP_NUM_THREADS / the CPU affinity). The test ``loss`` is the MSE on targets standardised with the training
mean/std (regression; same as the networks) or the cross-entropy of predict_proba (classification).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from workflow_lib.config.types import RandomForestConfig
from workflow_lib.engine import Task, set_threads
from workflow_lib.training.run import write_method_artifacts

log = logging.getLogger("workflow_lib.baselines.random_forest")


def features(data: Any) -> np.ndarray:
    coarse = getattr(data, "coarse", None)
    if coarse is not None and np.size(coarse) > 0:
        array = np.asarray(coarse)
    else:
        array = np.asarray(data.x)
    return array.reshape(array.shape[0], -1).astype(np.float32)


def available_threads(device_cfg: Any = None) -> int:
    threads = int(getattr(device_cfg, "threads", 0) or 0)
    return threads if threads > 0 else max(1, set_threads(0))


def _loss(task: Task, model: Any, feats: np.ndarray, y: np.ndarray, pred: np.ndarray) -> float:
    if task.regression:
        err = (pred.astype(np.float64) - y.astype(np.float64)) / task.std
        return float(np.mean(err**2))
    proba = np.full((len(y), task.out_dim), 1e-15)
    proba[:, model.classes_.astype(np.int64)] = np.clip(model.predict_proba(feats), 1e-15, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(proba[np.arange(len(y)), y.astype(np.int64)])))


def run(stage: Any, data: Any, out_dir: str | Path, checkpoint_dir: str | Path, seed: int) -> dict[str, Any]:
    cfg = RandomForestConfig.from_dict(stage.settings)
    task = Task.from_prepared(data, data.train_index)
    feats = features(data)
    y = np.asarray(data.y)
    train, test_rows = np.asarray(data.train_index), np.asarray(data.test_index)
    n_jobs = available_threads(stage.device) if cfg.n_jobs == -1 else cfg.n_jobs
    kwargs = dict(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth, min_samples_leaf=cfg.min_samples_leaf,
                  max_features=cfg.max_features, n_jobs=n_jobs, random_state=int(seed))
    model = RandomForestRegressor(**kwargs) if task.regression else RandomForestClassifier(**kwargs)
    t0 = time.perf_counter()
    model.fit(feats[train], y[train])
    seconds = time.perf_counter() - t0
    pred_train = model.predict(feats[train])
    pred_test = model.predict(feats[test_rows])
    train_metrics = task.metrics(pred_train, y[train])
    test_metrics = task.metrics(pred_test, y[test_rows])
    test = {**test_metrics, "loss": _loss(task, model, feats[test_rows], y[test_rows], pred_test)}
    history = [{
        "epoch": 1,
        "train_loss": _loss(task, model, feats[train], y[train], pred_train),
        "train_metric": train_metrics[task.metric_name],
        "test_loss": test["loss"],
        "test_metric": test[task.metric_name],
        "lr": None,
        "seconds": seconds,
    }]
    log.info("random_forest seed %d: %d features, test %s (%.1f s)", seed, feats.shape[1],
             {k: round(v, 4) for k, v in test.items()}, seconds)
    if not task.regression:
        pred_test = pred_test.astype(np.int64)
    return write_method_artifacts(
        out_dir, method="random_forest", dataset=stage.dataset, seed=seed, task=task,
        parameters=int(sum(tree.tree_.node_count for tree in model.estimators_)), train_seconds=seconds,
        device="cpu", epochs=1, test=test, config=cfg.to_dict(), stage_document=stage.to_dict(),
        history=history, index=test_rows, y_true=y[test_rows], y_pred=pred_test,
        budget={"epochs": 1, "optimizer_steps": None, "samples_seen": int(len(train)), "train_seconds": seconds,
                "input_shape": [int(feats.shape[1])], "trees": cfg.n_estimators},
        extra={"features": int(feats.shape[1]), "n_jobs": n_jobs},
    )
