"""Aggregate the per-seed metrics.json files of a dataset into summary.json.

``summarise(dataset, metrics_paths) -> dict``::

    {"dataset": ds,
     "methods": {method: {"task", "metric", "seeds": [..], "n_seeds", "parameters",
                          "parameters_per_seed": [..],
                          "test": {name: {"mean", "std", "values": [..]}},
                          "train_seconds": {"mean", "std", "values": [..]}}}}

``std`` is the sample standard deviation (ddof=1) over seeds, 0.0 with one seed. ``parameters`` is the count
when every seed has the same, otherwise the mean rounded to an integer (cell methods differ per seed).
Methods appear in the order of first appearance; seeds sorted. With the search advantage's per-seed
``advantage.json`` files (``advantage_paths``) the summary also holds ``search_advantage``
(``results.advantage.summary_block``: percentile, random_scores, found_score, relative_improvement, protocol,
beaten, n, random_mean, random_std; pooled with ``per_seed`` entries over several seeds).
``write_summary(path, dataset, metrics_paths, advantage_paths=())`` writes it atomically and returns it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from workflow_lib.io import read_json
from workflow_lib.results.advantage import summary_block
from workflow_lib.results.writers import write_metrics


def _stats(values: list[float]) -> dict[str, Any]:
    clean = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not clean:
        return {"mean": None, "std": None, "values": values}
    array = np.asarray(clean, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "values": values}


def summarise(dataset: str, metrics_paths: Iterable[str | Path],
              advantage_paths: Iterable[str | Path] = ()) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in metrics_paths:
        document = read_json(path)
        runs.setdefault(document["method"], []).append(document)
    methods: dict[str, Any] = {}
    for method, docs in runs.items():
        docs = sorted(docs, key=lambda d: (d.get("seed") is None, d.get("seed")))
        seeds = [d.get("seed") for d in docs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"summary of {dataset}: method {method!r} has duplicate seeds {seeds}")
        params = [d.get("parameters") for d in docs]
        known = [p for p in params if p is not None]
        if known and all(p == known[0] for p in known):
            parameters: Any = known[0]
        else:
            parameters = int(round(float(np.mean(known)))) if known else None
        names: list[str] = []
        for d in docs:
            for name in d.get("test", {}):
                if name not in names:
                    names.append(name)
        methods[method] = {
            "task": docs[0].get("task"),
            "metric": "r2" if docs[0].get("task") == "regression" else "accuracy",
            "seeds": seeds,
            "n_seeds": len(docs),
            "parameters": parameters,
            "parameters_per_seed": params,
            "test": {name: _stats([d.get("test", {}).get(name) for d in docs]) for name in names},
            "train_seconds": _stats([d.get("train_seconds") for d in docs]),
        }
    document: dict[str, Any] = {"dataset": dataset, "methods": methods}
    advantage = [read_json(path) for path in advantage_paths]
    if advantage:
        document["search_advantage"] = summary_block(advantage)
    return document


def write_summary(path: str | Path, dataset: str, metrics_paths: Iterable[str | Path],
                  advantage_paths: Iterable[str | Path] = ()) -> dict[str, Any]:
    document = summarise(dataset, metrics_paths, advantage_paths)
    write_metrics(path, document)
    return document
