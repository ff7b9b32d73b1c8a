"""What each method's result cost, beside its score: epochs, optimizer steps, samples seen, wall time, input.

Read from the ``budget`` blocks the steps write (metrics.json of every method, history.json of the search,
candidates.json of the random search, advantage.json of the search advantage); averaged over seeds. A reader can only judge a comparison of test
scores when the budgets stand next to them (a searched cell trained for 10 epochs against a ResNet trained
for 2 says little about the architectures).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from workflow_lib.report.collect import DatasetResults


def _mean(values: Iterable[Any]) -> float:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else math.nan


def fmt_count(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def fmt_shape(shape: Any) -> str:
    if not isinstance(shape, list) or not shape:
        return "n/a"
    if len(shape) == 1:
        return f"{shape[0]} features"
    return "×".join(str(s) for s in shape)


def summarize(budgets: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of one phase's budget, as text and sortable values."""
    budgets = [b for b in budgets if isinstance(b, dict) and b]
    if not budgets:
        return {"epochs": "n/a", "steps": "n/a", "samples": "n/a", "wall": math.nan, "input": "n/a",
                "steps_value": "nan", "samples_value": "nan"}
    steps = _mean(b.get("optimizer_steps") for b in budgets)
    samples = _mean(b.get("samples_seen") for b in budgets)
    epochs = _mean(b.get("epochs") for b in budgets)
    return {
        "epochs": fmt_count(epochs), "steps": fmt_count(steps), "samples": fmt_count(samples),
        "wall": _mean(b.get("wall_seconds", b.get("train_seconds")) for b in budgets),
        "input": fmt_shape(budgets[0].get("input_shape")),
        "steps_value": f"{steps:.6g}" if math.isfinite(steps) else "nan",
        "samples_value": f"{samples:.6g}" if math.isfinite(samples) else "nan",
    }


def _candidate_input(document: dict[str, Any]) -> Any:
    candidates = document.get("candidates") or [{}]
    return (candidates[0].get("budget") or {}).get("input_shape")


def advantage_budget(document: dict[str, Any]) -> dict[str, Any]:
    """The search advantage of one seed: every cell's training, summed."""
    cells = [document.get("found") or {}, *(document.get("random") or [])]
    budgets = [cell.get("budget") or {} for cell in cells]
    return {"epochs": sum(b.get("epochs", 0) for b in budgets),
            "optimizer_steps": sum(b.get("optimizer_steps", 0) for b in budgets),
            "samples_seen": sum(b.get("samples_seen", 0) for b in budgets),
            "train_seconds": sum(float(cell.get("seconds") or 0.0) for cell in cells),
            "input_shape": (document.get("protocol") or {}).get("input_shape")}


def method_budget(ds: DatasetResults, method: str) -> dict[str, Any]:
    """The budget of the model a method's score comes from (its final training)."""
    return summarize([run.metrics.get("budget") for run in ds.methods.get(method, {}).values()])


def phases(ds: DatasetResults) -> list[dict[str, Any]]:
    """Every phase that cost compute, per method: search, candidates, final training, fits."""
    rows = []
    if ds.searches:
        rows.append({"method": "darts", "phase": "architecture search",
                     **summarize([run.budget for run in ds.searches.values()])})
    if ds.advantage:
        rows.append({"method": "darts", "phase": "search advantage (found + random cells, one protocol)",
                     **summarize([advantage_budget(document) for document in ds.advantage.values()])})
    for method, runs in ds.methods.items():
        if method == "random_search":
            documents = [run.candidates or {} for run in runs.values()]
            rows.append({"method": method, "phase": "candidates (search-train / search-val)", **summarize([
                {"epochs": c.get("candidate_epochs_total"), "optimizer_steps": c.get("candidate_steps_total"),
                 "samples_seen": c.get("candidate_samples_total"), "train_seconds": c.get("candidate_seconds_total"),
                 "input_shape": _candidate_input(document)}
                for document in documents for c in [document.get("budget") or {}]])})
        phase = "fit" if method == "random_forest" else "final training"
        rows.append({"method": method, "phase": phase, **method_budget(ds, method)})
    return rows
