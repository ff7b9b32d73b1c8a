"""design.json and design.csv of the design stage.

design.json::

    {"dataset", "source": "md"|"surrogate", "target", "objective": "maximize", "n_candidates": 29791,
     "seeds", "models", "config": {design block},
     "budget": {"n_initial", "per_generation", "generations", "simulations"},
     "oracle": {"source", "simulated_for_table", "seconds"},
     "true": {"best", "thresholds": {"10": value of the 10th best, ...}, "top": [{rank, index, pattern, true}]},
     "runs": [{"model", "seed", "simulations", "seconds",
               "records": [{"generation", "simulations", "best_true", "picked_mean_true",
                            "found_top10", "found_top100", "r2_unseen", "seconds"}, ...],   # generation 0..G
               "top_designs": [{"rank", "index", "pattern", "true", "true_rank", "predicted", "generation"}],
               "revealed": [candidate index in reveal order]}],
     "genotype": path | null, "wall_seconds"}

``pattern`` is the 15 coarse values row-major (1 = material, 0 = cut); ``index`` the candidate's position in
``enumerate_valid_patterns()``; ``predicted`` the picking model's prediction (null for the initial random
designs and the random baseline); ``r2_unseen`` the R^2 of that generation's model on the candidates it had
not seen (null for generation 0 and for random). design.csv holds the records with ``model,seed`` in front.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from workflow_lib.design.config import DesignConfig
from workflow_lib.design.loop import DesignRun
from workflow_lib.design.oracle import CandidateTable
from workflow_lib.design.score import Scorer


def top_designs(run: DesignRun, n: int, table: CandidateTable, scorer: Scorer) -> list[dict[str, Any]]:
    """The n best designs a run revealed (by true value), with the prediction that picked each."""
    order = sorted(range(len(run.revealed)), key=lambda j: (-run.values[j], run.revealed[j]))[:n]
    return [{"rank": r + 1, "index": run.revealed[j], "pattern": table.patterns[run.revealed[j]].astype(int).tolist(),
             "true": run.values[j], "true_rank": int(scorer.rank[run.revealed[j]]), "predicted": run.predicted[j],
             "generation": run.generation[j]} for r, j in enumerate(order)]


def design_document(dataset: str, cfg: DesignConfig, seeds: list[int], table: CandidateTable, scorer: Scorer,
                    runs: list[dict[str, Any]], table_seconds: float, wall_seconds: float,
                    genotype_path: Any = None) -> dict[str, Any]:
    return {
        "dataset": dataset, "source": table.source, "target": table.target, "objective": "maximize",
        "n_candidates": int(len(table.values)), "seeds": seeds, "models": list(cfg.models), "config": cfg.to_dict(),
        "budget": {"n_initial": cfg.n_initial, "per_generation": cfg.per_generation,
                   "generations": cfg.generations, "simulations": cfg.simulations},
        "oracle": {"source": table.source, "simulated_for_table": table.simulated, "seconds": table_seconds},
        "true": {"best": scorer.best, "thresholds": {str(k): v for k, v in scorer.thresholds.items()},
                 "top": scorer.reference(max(scorer.top_k), table.patterns)},
        "runs": [{"model": r["model"], "seed": r["seed"], "simulations": r["simulations"], "seconds": r["seconds"],
                  "records": r["run"].records,
                  "top_designs": top_designs(r["run"], cfg.n_top_designs, table, scorer),
                  "revealed": r["run"].revealed} for r in runs],
        "genotype": None if genotype_path is None else str(genotype_path),
        "wall_seconds": wall_seconds,
    }


def records_csv(document: dict[str, Any]) -> str:
    runs = document["runs"]
    keys = list(runs[0]["records"][0]) if runs else ["generation"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "seed", *keys])
    for run in runs:
        for record in run["records"]:
            writer.writerow([run["model"], run["seed"], *(_cell(record.get(k)) for k in keys)])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return value
