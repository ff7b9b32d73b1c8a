"""The DARTS paper's selection step (Liu et al., ICLR 2019, Sec. 3.2 / App. A.2): the search is run with
several seeds, each derived cell is trained from scratch for a short while and scored on held-out training
data, and the best cell goes to the final training. Held-out means search-val: never the test set.

``select_cell(stage, data, genotypes, out_dir, checkpoint_dir) -> dict`` trains every ``{seed: genotype}``
with the dataset's ``train`` settings for ``selection.epochs`` epochs on search-train, scores it on
search-val, and writes ``selected_genotype.json`` (the winner, the genotype format) and ``selection.json``
(every candidate's score; ties go to the lower seed).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from workflow_lib.config.types import SelectionConfig, TrainConfig
from workflow_lib.engine import fingerprint_of
from workflow_lib.io import write_json_atomic
from workflow_lib.models.registry import darts_eval, resolve_genotype
from workflow_lib.training.fitting import fit
from workflow_lib.training.schedule import Schedule

log = logging.getLogger("workflow_lib.darts.selection")


def short_schedule(train: TrainConfig, selection: SelectionConfig) -> Schedule:
    schedule = Schedule.from_train_config(train)
    return dataclasses.replace(schedule, epochs=selection.epochs, max_steps_per_epoch=selection.max_steps_per_epoch,
                               eval_each_epoch=False)


def select_cell(stage: Any, data: Any, genotypes: dict[int, Any], out_dir: str | Path,
                checkpoint_dir: str | Path) -> dict[str, Any]:
    selection = SelectionConfig.from_dict(stage.settings["selection"])
    train = TrainConfig.from_dict(stage.settings["train"])
    schedule = short_schedule(train, selection)
    scores = []
    for seed, genotype in sorted(genotypes.items()):
        genotype = resolve_genotype(genotype)
        result = fit(lambda g=genotype: darts_eval(int(data.in_channels), int(data.out_dim), genotype=g, C=train.C,
                                                   layers=train.layers, auxiliary=train.auxiliary),
                     data, schedule, data.search_train_index, data.search_val_index, stage.device,
                     Path(checkpoint_dir) / f"seed{seed}.pt", seed, name=f"selection: cell of search seed {seed}",
                     fingerprint=fingerprint_of(genotype.to_dict(), "selection"), augment=stage.augment,
                     model_kind="darts_eval")
        scores.append({"seed": int(seed), "val_metric": result.evaluation["metric"], "genotype": genotype.to_dict(),
                       "budget": result.budget})
        log.info("selection: search seed %d scores %s %.4f on search-val", seed, result.task.metric_name,
                 result.evaluation["metric"])
    best = max(scores, key=lambda s: (s["val_metric"], -s["seed"]))
    document = {"selected_seed": best["seed"], "metric": result.task.metric_name, "scored_on": "search_val",
                "trained_on": "search_train", "epochs": schedule.epochs, "candidates": scores}
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / "selection.json", document)
    write_json_atomic(out_dir / "selected_genotype.json", best["genotype"])
    return document
