"""design.json, design.csv and simulations.csv of the design stage.

design.json::

    {"dataset", "kind": "kirigami"|"npz", "source", "target", "objective": "maximize", "n_candidates", "n_given",
     "seeds", "pickers": {name: {model, acquisition, kappa, xi, ensemble, batch, min_distance}}, "config",
     "budget": {"n_initial", "per_generation", "generations", "simulations"},
     "oracle": {"type", "command", "batch", "retries", "table": "simulations.csv", "designs", "ok", "failed",
                "reused", "sent", "sent_distinct", "seconds"},
     "true": null | {"best", "thresholds": {"10": value of the 10th best, ...}, "top": [{rank, id, value, pattern?}]},
     "runs": [{"picker", "model", "acquisition", "batch", "seed", "simulations", "distinct", "failed", "seconds",
               "records": [{"generation", "simulations", "failed", "best", "picked_mean",
                            "found_top10", "found_top100", "r2_unseen", "seconds"}, ...],   # generation 0..G
               "top_designs": [{"rank", "id", "value", "true_rank", "predicted", "std", "generation", "pattern"?}],
               "revealed": [id in reveal order], "failed_ids": [...]}],
     "genotype": the darts picker's cell | null, "run_info", "wall_seconds"}

``simulations`` = designs the run revealed (its budget, all distinct: ``distinct``), whether the table
already held them or not; ``failed`` = those whose simulation failed. ``best`` = the best value the run knows
(its revealed designs and the given ones). ``oracle``: ``designs`` = rows of simulations.csv (``ok`` +
``failed``), ``reused`` = designs the oracle answered from the table of an earlier workflow run, ``sent`` /
``sent_distinct`` = designs sent to the command over all calls / distinct ones (equal unless a failed design
was retried). ``true``, ``found_top{k}``, ``true_rank`` and ``r2_unseen`` (the picking model's R^2 on the
candidates the run had not seen; null for generation 0 and random picks) exist with the lookup oracle only.
``pattern`` (kirigami): the 15 coarse values row-major (1 = material, 0 = cut). design.csv holds the records
with ``picker,model,seed`` in front.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import numpy as np

from workflow_lib.design.config import DesignConfig
from workflow_lib.design.loop import FAILED, GIVEN, LoopState, RunState
from workflow_lib.design.score import Scorer


def _pattern(space: Any, i: int) -> dict[str, Any]:
    return {} if space.patterns is None else {"pattern": space.patterns[i].astype(int).tolist()}


def top_designs(run: RunState, state: LoopState, n: int, space: Any, scorer: Scorer | None) -> list[dict[str, Any]]:
    """The n best designs a run revealed (by value), with the prediction that picked each."""
    rows = [(state.value(i), j) for j, i in enumerate(run.revealed) if state.value(i) is not None]
    rows = sorted(rows, key=lambda r: (-r[0], run.revealed[r[1]]))[:n]
    return [{"rank": r + 1, "id": run.revealed[j], "value": value,
             "true_rank": None if scorer is None else int(scorer.rank[run.revealed[j]]),
             "predicted": run.predicted[j], "std": run.std[j], "generation": run.generation[j],
             **_pattern(space, run.revealed[j])} for r, (value, j) in enumerate(rows)]


def true_block(scorer: Scorer | None, space: Any) -> dict[str, Any] | None:
    if scorer is None:
        return None
    return {"best": scorer.best, "thresholds": {str(k): v for k, v in scorer.thresholds.items()},
            "top": [{"rank": r + 1, "id": int(i), "value": float(space.truth[i]), **_pattern(space, int(i))}
                    for r, i in enumerate(scorer.order[:max(scorer.top_k)])]}


def run_entry(run: RunState, state: LoopState, cfg: DesignConfig, space: Any, scorer: Scorer | None) -> dict:
    picker = cfg.pickers[run.picker]
    failed = [i for i in run.revealed if state.known[i]["status"] == FAILED]
    return {"picker": run.picker, "model": picker.model, "acquisition": picker.acquisition, "batch": picker.batch,
            "seed": run.seed, "simulations": len(run.revealed), "distinct": len(set(run.revealed)),
            "failed": len(failed), "seconds": float(sum(run.seconds)), "records": run.records,
            "top_designs": top_designs(run, state, cfg.n_top_designs, space, scorer),
            "revealed": list(run.revealed), "failed_ids": failed, "diverse_filled": int(sum(run.filled))}


def design_document(dataset: str, cfg: DesignConfig, seeds: list[int], space: Any, state: LoopState,
                    scorer: Scorer | None, oracle: dict[str, Any], wall_seconds: float,
                    run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "dataset": dataset, "kind": space.kind, "source": space.source, "target": space.target,
        "objective": "maximize", "n_candidates": space.n,
        "n_given": sum(1 for e in state.known.values() if e["status"] == GIVEN),
        "seeds": seeds, "pickers": {name: dataclasses.asdict(p) for name, p in cfg.pickers.items()},
        "config": cfg.to_dict(),
        "budget": {"n_initial": cfg.n_initial, "per_generation": cfg.per_generation,
                   "generations": cfg.generations, "simulations": cfg.simulations},
        "oracle": oracle, "true": true_block(scorer, space),
        "runs": [run_entry(run, state, cfg, space, scorer) for run in state.runs],
        "genotype": cfg.darts.genotype if "darts" in cfg.models else None,
        "run_info": run_info, "wall_seconds": wall_seconds,
    }


def records_csv(document: dict[str, Any]) -> str:
    runs = document["runs"]
    keys = list(dict.fromkeys(k for run in runs for record in run["records"] for k in record)) or ["generation"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["picker", "model", "seed", *keys])
    for run in runs:
        for record in run["records"]:
            writer.writerow([run["picker"], run["model"], run["seed"], *(_cell(record.get(k)) for k in keys)])
    return buffer.getvalue()


def table_rows(state: LoopState, outcomes: dict[int, Any] | None) -> list[dict[str, Any]]:
    """simulations.csv rows: every design the oracle answered (and, command, every settled one of the journal),
    with the generation that first asked for it and the runs that revealed it."""
    runs: dict[int, list[str]] = {}
    for run in state.runs:
        for i in run.revealed:
            runs.setdefault(i, []).append(run.name)
    rows = {}
    for i, entry in state.known.items():
        if entry["status"] == GIVEN:
            continue
        rows[i] = {"id": i, "y": entry["y"], "status": entry["status"], "generation": entry["generation"],
                   "attempts": 1, "seconds": 0.0, "designs": 0, "log": ""}
    for i, outcome in (outcomes or {}).items():
        rows[i] = {**rows.get(i, {"generation": outcome.generation}), "id": i, "y": outcome.y,
                   "status": outcome.status, "attempts": outcome.attempts, "seconds": outcome.seconds,
                   "designs": outcome.designs, "log": outcome.log}
    for i, row in rows.items():
        row["runs"] = ";".join(runs.get(i, []))
    return list(rows.values())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return value
