"""The search advantage: does the found cell beat cells drawn at random from the same space?

Yang et al. (ICLR 2020, "NAS evaluation is frustratingly hard") show that a NAS method's cell must be judged
against random cells of its own search space trained with the same protocol (Li and Talwalkar, 2019, make
the same point with random search). Per dataset and seed, ``run_advantage``:

1. samples ``num_cells`` cells uniformly from the DARTS space (``baselines.random_search.sample_genotype``:
   per node 2 distinct inputs among the earlier states, an op per input uniform over the 7 non-``none``
   primitives) from the stream ``random.Random("search_advantage/seed{seed}")``, independent of random
   search's candidates (``random.Random(seed)``), so the two never share cells by construction;
2. trains the found cell (the one the final training gets: the search's genotype.json, or the selected one)
   and every random cell with ONE protocol: the dataset's ``train`` settings (C, layers, batch size, SGD,
   cosine schedule, auxiliary head, drop path, cutout, input_stride), shortened only by the
   ``search_advantage`` block (epochs, max_steps_per_epoch; ``train_samples``: a fixed seeded subset of the
   training split, the same rows for every cell and seed). Every cell trains with the workflow seed, so
   initialisation stream and batch order follow the same seed scheme; the found cell is retrained here, so
   it gets exactly the random cells' protocol even where that is shorter than its final training;
3. scores every cell on the TEST split. Nothing is selected: the random cells are only scored, and the found
   cell was chosen before (by the search on search-val, or the selection step on search-val).

Writes ``advantage.json`` (``results.advantage.compare``: percentile, beaten, n, random mean/std, relative
improvement, z-score; every cell's genotype, score, parameters, seconds, budget; the protocol) and
``run_info.json``. Resume: each cell checkpoints per epoch (``checkpoint_dir/found.pt``, ``random{i}.pt``);
finished cells are recorded atomically in ``checkpoint_dir/cells.json`` and skipped on rerun (a record counts
only for the same protocol, network, augmentation, data, rows, device, seed and genotype: a new found cell
retrains only the found cell, more random cells train only the new ones).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import Any

from workflow_lib.baselines.random_search import sample_genotype
from workflow_lib.config.types import SearchAdvantageConfig, TrainConfig
from workflow_lib.datasets.splits import proxy_rows
from workflow_lib.engine import Task, device_label, fingerprint_of, resolve_device
from workflow_lib.io import write_json_atomic
from workflow_lib.models.registry import darts_eval, resolve_genotype
from workflow_lib.provenance import run_info
from workflow_lib.results.advantage import compare
from workflow_lib.training.fitting import fit, model_tensors, run_fingerprint
from workflow_lib.training.records import resumable_records, save_records
from workflow_lib.training.schedule import Schedule

log = logging.getLogger("workflow_lib.darts.advantage")

FOUND = "found"


def random_stream(seed: int) -> random.Random:
    """The random cells' own stream (a str seed is hashed with SHA-512: stable across runs and machines)."""
    return random.Random(f"search_advantage/seed{int(seed)}")


def random_cells(n: int, seed: int) -> list:
    rng = random_stream(seed)
    return [sample_genotype(rng) for _ in range(n)]


def protocol_schedule(train: TrainConfig, cfg: SearchAdvantageConfig) -> Schedule:
    """The train settings, shortened where the block says (null = train's); no per-epoch test curve."""
    schedule = Schedule.from_train_config(train)
    steps = cfg.max_steps_per_epoch if cfg.max_steps_per_epoch is not None else train.max_steps_per_epoch
    return dataclasses.replace(schedule, epochs=cfg.epochs or train.epochs, max_steps_per_epoch=steps,
                               eval_each_epoch=False)


def network_settings(train: TrainConfig) -> dict[str, Any]:
    return {"C": train.C, "layers": train.layers, "auxiliary": train.auxiliary}


def protocol_document(schedule: Schedule, train: TrainConfig, rows: int, input_shape: Any, metric: str) -> dict:
    return {"epochs": schedule.epochs, "max_steps_per_epoch": schedule.max_steps_per_epoch, "train_samples": rows,
            "input_shape": [int(s) for s in input_shape], "input_stride": list(schedule.input_stride),
            "batch_size": schedule.batch_size, "C": train.C, "layers": train.layers, "lr": schedule.lr,
            "lr_min": schedule.lr_min, "weight_decay": schedule.weight_decay, "auxiliary": train.auxiliary,
            "drop_path_prob": schedule.drop_path_prob, "cutout_length": schedule.cutout_length,
            "final_training_epochs": train.epochs, "metric": metric, "trained_on": "train",
            "scored_on": "test"}


def _cell_record(name: str, genotype: Any, cell_fingerprint: str, result: Any) -> dict[str, Any]:
    return {"name": name, "fingerprint": cell_fingerprint, "genotype": genotype.to_dict(),
            "score": result.evaluation["metric"], "parameters": result.parameters, "seconds": result.train_seconds,
            "budget": result.budget}


def run_advantage(stage: Any, data: Any, found_genotype: Any, out_dir: str | Path, checkpoint_dir: str | Path,
                  seed: int) -> dict[str, Any]:
    cfg = SearchAdvantageConfig.from_dict(stage.settings["search_advantage"])
    train = TrainConfig.from_dict(stage.settings["train"])
    schedule = protocol_schedule(train, cfg)
    checkpoint_dir, out_dir = Path(checkpoint_dir), Path(out_dir)
    rows = proxy_rows(data.train_index, cfg.train_samples)
    found = resolve_genotype(found_genotype)
    cells = [(FOUND, found)] + [(f"random{i}", g) for i, g in enumerate(random_cells(cfg.num_cells, seed))]
    # what a cell's training depends on (not num_cells: more cells reuse the finished ones)
    base = run_fingerprint(data, rows, stage.device, dataclasses.asdict(schedule), network_settings(train),
                           stage.augment.to_dict(), int(seed))
    record_path = checkpoint_dir / "cells.json"
    done = {r["name"]: r for r in resumable_records(record_path, base, "cells", "search advantage")}
    device = resolve_device(stage.device)
    task = Task.from_prepared(data, rows)
    tensors = model_tensors(data, device, task, schedule.input_stride, stage.augment, rows)
    protocol = protocol_document(schedule, train, len(rows), tensors[0].shape[1:], task.metric_name)
    t0 = time.perf_counter()
    for k, (name, genotype) in enumerate(cells):
        cell_fingerprint = fingerprint_of(base, genotype.to_dict())
        if done.get(name, {}).get("fingerprint") == cell_fingerprint:
            continue
        result = fit(lambda g=genotype: darts_eval(int(data.in_channels), int(data.out_dim), genotype=g, C=train.C,
                                                   layers=train.layers, auxiliary=train.auxiliary),
                     data, schedule, rows, data.test_index, stage.device, checkpoint_dir / f"{name}.pt", seed,
                     name=f"search_advantage seed {seed}: {name} cell ({k + 1}/{len(cells)})",
                     fingerprint=cell_fingerprint, tensors=tensors, augment=stage.augment, model_kind="darts_eval")
        done[name] = _cell_record(name, genotype, cell_fingerprint, result)
        save_records(record_path, base, "cells", [done[n] for n, _ in cells if n in done])
        log.info("search_advantage seed %d: %s cell test %s %.4f", seed, name, task.metric_name,
                 result.evaluation["metric"])
    del tensors
    document = advantage_document(stage, seed, task, [done[n] for n, _ in cells], protocol)
    write_json_atomic(out_dir / "advantage.json", document)
    info = run_info(stage.to_dict(), seed, device_label(device))
    info["wall_seconds"] = time.perf_counter() - t0
    write_json_atomic(out_dir / "run_info.json", info)
    log.info("search_advantage seed %d: the found cell beat %d of %d random cells (percentile %.0f)", seed,
             document["beaten"], document["n"], document["percentile"])
    return document


def advantage_document(stage: Any, seed: int, task: Task, records: list[dict[str, Any]],
                       protocol: dict[str, Any]) -> dict[str, Any]:
    found, rand = records[0], records[1:]
    keys = ("genotype", "score", "parameters", "seconds", "budget")
    return {
        "dataset": stage.dataset, "seed": int(seed), "metric": task.metric_name,
        "higher_is_better": bool(task.higher_is_better),
        "found": {key: found[key] for key in keys},
        "random": [{"index": i, **{key: r[key] for key in keys}} for i, r in enumerate(rand)],
        **compare(found["score"], [r["score"] for r in rand], task.higher_is_better),
        "protocol": protocol,
        "random_stream": f"search_advantage/seed{int(seed)}",
    }


def advantage_step(stage: Any, data_path: str | Path, genotype_path: str | Path, out_dir: str | Path,
                   checkpoint_dir: str | Path, seed: int) -> dict[str, Any]:
    """CLI entry (``python -m workflow_lib search-advantage``): load prepared.npz and run the comparison."""
    from workflow_lib.datasets.prepared import PreparedData

    genotype_path = Path(genotype_path)
    if not genotype_path.is_file():
        raise FileNotFoundError(f"search_advantage: the found cell's genotype file {genotype_path} does not exist")
    return run_advantage(stage, PreparedData.load(data_path), genotype_path, out_dir, checkpoint_dir, seed)
