"""Learning curves (data efficiency): test score against the number of training samples, per method.

``learning_curve_step(dataset, kind, settings, data_path, genotype_path, out_dir, work_dir, seed_list, threads,
device=None) -> dict``

- ``settings``: ``{"learning_curves": the dataset's validated learning_curves block, "random_forest":
  baselines.random_forest, "tiny_resnet": baselines.tiny_resnet, "resnet18": baselines.resnet18,
  "darts": train}``: every method trains exactly as its own workflow step does (same code path:
  ``baselines.random_forest.run``, ``baselines.cnn.run_cnn``, ``training.run.run_training``), with epochs and
  steps per epoch capped by ``max_epochs`` / ``max_steps_per_epoch`` (the budget per point).
- A point (method, n, seed) trains on a seeded subset of ``data.train_index`` of size n, nested across sizes
  (the first n of one seeded permutation), and always tests on the full ``data.test_index``. Sizes above the
  training split are skipped; ``"all"`` is the whole split (then the point is the method's own run).
- ``genotype_path``: the search's genotype.json for ``darts`` when ``train.genotype`` is null.
- ``work_dir``: per-point artifacts and checkpoints (``{method}/n{n}/seed{s}/``), so a killed job resumes.
- writes ``out_dir/learning_curves.json`` (``{"dataset", "task", "metric", "n_train_available", "n_test",
  "sizes", "skipped_sizes", "seeds", "methods", "config", "method_settings", "points": [{"method", "n_train",
  "seed", "metric", "value", "test": {...}, "seconds", "epochs", "parameters"}], "wall_seconds"}``) and
  ``out_dir/learning_curves.csv`` (``method,n_train,seed,metric,value,seconds``), atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from workflow_lib.config.stage import StageConfig
from workflow_lib.config.types import AugmentConfig
from workflow_lib.design.config import LearningCurvesConfig
from workflow_lib.io import write_json_atomic, write_text_atomic

log = logging.getLogger("workflow_lib.learning_curves")
NEURAL = ("tiny_resnet", "resnet18", "darts")


def resolve_sizes(sizes: Iterable[int | str], available: int) -> tuple[list[int], list[int]]:
    """(sizes to run, ascending and distinct; sizes skipped because the training split is smaller)."""
    wanted = [available if s == "all" else int(s) for s in sizes]
    return sorted({n for n in wanted if n <= available}), sorted({n for n in wanted if n > available})


def training_subset(train_index: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n rows of the training split; nested across n for one seed (less noise between sizes)."""
    train_index = np.asarray(train_index, dtype=np.int64)
    if n >= len(train_index):
        return train_index
    return np.sort(np.random.default_rng(seed).permutation(train_index)[:n])


def point_data(data: Any, subset: np.ndarray) -> Any:
    """The data a point trains on: ``train_index`` = subset, ``test_index`` = the full test split."""
    if len(subset) == len(data.train_index):
        return data
    return data.subset(np.sort(np.concatenate([subset, data.test_index])))


def capped(settings: dict[str, Any], cfg: LearningCurvesConfig) -> dict[str, Any]:
    """A network's settings under the per-point budget."""
    out = dict(settings)
    if cfg.max_epochs is not None:
        out["epochs"] = min(out["epochs"], cfg.max_epochs)
    if cfg.max_steps_per_epoch is not None:
        steps = out.get("max_steps_per_epoch")
        out["max_steps_per_epoch"] = cfg.max_steps_per_epoch if steps is None else min(steps, cfg.max_steps_per_epoch)
    return out


def run_point(method: str, stage: StageConfig, data: Any, genotype: Any, point_dir: Path, seed: int) -> dict:
    """One method on one subset, through that method's own workflow code."""
    if method == "random_forest":
        from workflow_lib.baselines import random_forest

        return random_forest.run(stage, data, point_dir, point_dir, seed)
    if method in ("tiny_resnet", "resnet18"):
        from workflow_lib.baselines.cnn import run_cnn

        return run_cnn(method, stage, data, point_dir, point_dir, seed)
    if method == "darts":
        from workflow_lib.training.run import run_training

        return run_training(stage, data, stage.settings.get("genotype") or genotype, point_dir, point_dir, seed,
                            method_name="darts", train_config=stage.settings)
    raise ValueError(f"learning curves: unknown method {method!r}")


def _point(method: str, n: int, seed: int, document: dict[str, Any], wall: float) -> dict[str, Any]:
    metric = document["metric"]
    return {"method": method, "n_train": n, "seed": seed, "metric": metric, "value": document["test"][metric],
            "test": document["test"], "seconds": document["train_seconds"], "wall_seconds": wall,
            "epochs": document["epochs"], "parameters": document["parameters"]}


def points_csv(points: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "n_train", "seed", "metric", "value", "seconds"])
    for p in points:
        writer.writerow([p["method"], p["n_train"], p["seed"], p["metric"], f"{p['value']:.6g}", f"{p['seconds']:.4g}"])
    return buffer.getvalue()


def learning_curve_step(dataset: str, kind: str, settings: dict[str, Any], data_path: str | Path,
                        genotype_path: str | Path | None, out_dir: str | Path, work_dir: str | Path,
                        seed_list: Iterable[int], threads: int, device: Any = None,
                        augment: Any = None) -> dict[str, Any]:
    from workflow_lib.datasets.prepared import PreparedData
    from workflow_lib.design.run import cpu_device

    t0 = time.perf_counter()
    cfg = LearningCurvesConfig.from_dict(settings["learning_curves"])
    seeds = [int(s) for s in (cfg.seeds if cfg.seeds is not None else seed_list)]
    device = device if device is not None else cpu_device(threads)
    augment = augment if augment is not None else AugmentConfig.defaults()
    data = PreparedData.load(data_path)
    sizes, skipped = resolve_sizes(cfg.sizes, len(data.train_index))
    if skipped:
        log.info("learning curves: skipping sizes %s (the training split holds %d)", skipped, len(data.train_index))
    method_settings = {m: capped(settings[m], cfg) if m in NEURAL else dict(settings[m]) for m in cfg.methods}
    points = []
    for n in sizes:
        for seed in seeds:
            subset_data = point_data(data, training_subset(data.train_index, n, seed))
            for method in cfg.methods:
                stage = StageConfig(dataset, kind, method, device, method_settings[method], augment)
                t1 = time.perf_counter()
                document = run_point(method, stage, subset_data, genotype_path,
                                     Path(work_dir) / method / f"n{n}" / f"seed{seed}", seed)
                points.append(_point(method, n, seed, document, time.perf_counter() - t1))
                log.info("learning curves: %s n=%d seed %d: %s %.4g", method, n, seed, document["metric"],
                         points[-1]["value"])
    metric = points[0]["metric"] if points else None
    document = {"dataset": dataset, "task": data.task, "metric": metric, "n_train_available": len(data.train_index),
                "n_test": len(data.test_index), "sizes": sizes, "skipped_sizes": skipped, "seeds": seeds,
                "methods": list(cfg.methods), "config": cfg.to_dict(), "method_settings": method_settings,
                "points": points, "wall_seconds": time.perf_counter() - t0}
    write_text_atomic(Path(out_dir) / "learning_curves.csv", points_csv(points))
    write_json_atomic(Path(out_dir) / "learning_curves.json", document)
    return document
