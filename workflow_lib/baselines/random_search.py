"""Random search over the DARTS cell space (Li & Talwalkar, 2019), with the winner trained like the DARTS cell.

1. ``sample_genotypes(n, seed)``: per cell type and intermediate node k (0..3), 2 distinct inputs drawn
   uniformly among the k+2 earlier states and 2 ops drawn uniformly over the 7 non-``none`` primitives;
   concat [2, 3, 4, 5]. ``random.Random(seed)``: candidate i does not depend on how many are drawn.
2. each candidate's evaluation network (C, layers from RandomSearchConfig, no auxiliary head, no drop path)
   trains ``candidate_epochs`` on ``data.search_train_index`` with the search's weight-optimizer defaults
   (SGD lr 0.025 cosine to 0.001, momentum 0.9, weight decay 3e-4, grad clip 5; batch_size and
   max_steps_per_epoch from RandomSearchConfig), and is scored on ``data.search_val_index``.
3. the best (highest r2 / accuracy; ties: first) is trained with ``training.run_training`` and the stage's
   ``train`` settings (method "random_search"); ``candidates.json`` is written beside its artifacts.

Resume: each candidate checkpoints per epoch (``checkpoint_dir/candidates/cand{i}.pt``); finished candidates
are recorded atomically in ``checkpoint_dir/candidates.json`` and skipped on rerun; the winner's training
checkpoints in ``checkpoint_dir/final/``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any


from workflow_lib.config.types import RandomSearchConfig, SearchConfig, TrainConfig, matched_candidate_epochs
from workflow_lib.engine import Task, fingerprint_of, resolve_device
from workflow_lib.io import write_json_atomic
from workflow_lib.models.registry import darts_eval
from workflow_lib.datasets.splits import proxy_rows
from workflow_lib.training.fitting import model_tensors
from workflow_lib.training.records import resumable_records, save_records
from workflow_lib.training.run import Schedule, fit, metrics_block, run_fingerprint, run_training

log = logging.getLogger("workflow_lib.baselines.random_search")

NODES = 4


def _primitives() -> list[str]:
    from workflow_lib.darts.genotypes import PRIMITIVES

    return [p for p in PRIMITIVES if p != "none"]


def sample_genotype(rng: random.Random, nodes: int = NODES):
    from workflow_lib.darts.genotypes import Genotype

    ops = _primitives()

    def cell() -> list[tuple[str, int]]:
        pairs = []
        for k in range(nodes):
            for source in sorted(rng.sample(range(k + 2), 2)):
                pairs.append((rng.choice(ops), source))
        return pairs

    concat = list(range(2, 2 + nodes))
    return Genotype(normal=cell(), normal_concat=concat, reduce=cell(), reduce_concat=concat)


def sample_genotypes(n: int, seed: int) -> list:
    rng = random.Random(int(seed))
    return [sample_genotype(rng) for _ in range(n)]


def candidate_schedule(cfg: RandomSearchConfig, search: SearchConfig) -> Schedule:
    """How a candidate trains: the search's weight optimiser, proxy resolution and epochs shared out."""
    return Schedule(epochs=matched_candidate_epochs(cfg, search.epochs), batch_size=cfg.batch_size, lr=search.w_lr,
                    lr_min=search.w_lr_min, momentum=search.w_momentum, weight_decay=search.w_weight_decay,
                    grad_clip=search.w_grad_clip, max_steps_per_epoch=cfg.max_steps_per_epoch, eval_each_epoch=False,
                    input_stride=tuple(search.input_stride))


def run(stage: Any, data: Any, out_dir: str | Path, checkpoint_dir: str | Path, seed: int) -> dict[str, Any]:
    settings = stage.settings
    cfg = RandomSearchConfig.from_dict(settings.get("random_search", {}))
    train_cfg = TrainConfig.from_dict(settings.get("train", {}))
    checkpoint_dir = Path(checkpoint_dir)
    record_path = checkpoint_dir / "candidates.json"
    genotypes = sample_genotypes(cfg.num_candidates, seed)
    search = SearchConfig.from_dict(settings.get("search", {}))
    schedule = candidate_schedule(cfg, search)
    train_rows = proxy_rows(data.search_train_index, search.max_samples)
    val_rows = proxy_rows(data.search_val_index, search.max_samples)
    fingerprint = run_fingerprint(data, train_rows, stage.device, cfg.to_dict(), asdict(schedule), int(seed),
                                  stage.augment.to_dict())
    records = resumable_records(record_path, fingerprint, "candidates", "random search")

    device = resolve_device(stage.device)
    task = Task.from_prepared(data, data.search_train_index)
    tensors = model_tensors(data, device, task, schedule.input_stride, stage.augment, data.search_train_index)
    for i in range(len(records), cfg.num_candidates):
        genotype = genotypes[i]
        result = fit(
            lambda g=genotype: darts_eval(int(data.in_channels), int(data.out_dim), genotype=g, C=cfg.C,
                                          layers=cfg.layers, auxiliary=False),
            data, schedule, train_rows, val_rows, stage.device,
            checkpoint_dir / "candidates" / f"cand{i}.pt", seed, name=f"random_search candidate {i + 1}/"
            f"{cfg.num_candidates}", fingerprint=fingerprint_of(fingerprint, genotype.to_dict()), tensors=tensors,
            augment=stage.augment, model_kind="darts_eval",
        )
        records.append({
            "index": i,
            "genotype": genotype.to_dict(),
            "val_metric": result.evaluation["metric"],
            "val": metrics_block(result.evaluation),
            "seconds": result.train_seconds,
            "parameters": result.parameters,
            "budget": result.budget,
        })
        save_records(record_path, fingerprint, "candidates", records)
        log.info("random_search seed %d: candidate %d/%d val %s %.4f", seed, i + 1, cfg.num_candidates,
                 task.metric_name, result.evaluation["metric"])

    best = 0
    for i, record in enumerate(records):
        value = float("nan") if record["val_metric"] is None else record["val_metric"]
        best_value = float("nan") if records[best]["val_metric"] is None else records[best]["val_metric"]
        if task.better(value, best_value):
            best = i
    winner = records[best]
    log.info("random_search seed %d: winner candidate %d (val %s %s)", seed, best + 1, task.metric_name,
             winner["val_metric"])
    del tensors
    document = {
        "metric": task.metric_name,
        "split": {"train": "search_train", "score": "search_val"},
        "candidate_schedule": asdict(schedule),
        "best": best,
        "candidates": records,
        "budget": {
            "matched_to_search": bool(cfg.match_search_budget),
            "search_epochs": search.epochs,
            "num_candidates": cfg.num_candidates,
            "candidate_epochs": schedule.epochs,
            "candidate_epochs_total": cfg.num_candidates * schedule.epochs,
            "candidate_seconds_total": sum(float(r["seconds"] or 0.0) for r in records),
            "candidate_steps_total": sum(int(r.get("budget", {}).get("optimizer_steps", 0)) for r in records),
            "candidate_samples_total": sum(int(r.get("budget", {}).get("samples_seen", 0)) for r in records),
            "train_samples": int(len(train_rows)),
            "input_stride": list(schedule.input_stride),
        },
    }
    write_json_atomic(Path(out_dir) / "candidates.json", document)
    return run_training(stage, data, winner["genotype"], out_dir, checkpoint_dir / "final", seed,
                        method_name="random_search", train_config=train_cfg)
