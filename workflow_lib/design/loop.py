"""The ML-guided design loop (Hanakata et al., PRL 121, 255304, 2018: a CNN found the most stretchable
kirigami with ~1,000 MD simulations) and its random baseline at the same budget.

Per seed: reveal ``n_initial`` uniformly chosen candidates; then for each of ``generations``: the picker
proposes ``per_generation`` unseen candidates (a model trained on everything revealed, greedy on its
predictions; or uniformly at random), the oracle reveals them. Every run spends exactly
n_initial + generations * per_generation simulations. The initial set depends on the seed only, so all
models of one seed start from the same designs.

The loop never sees the complete table: ``observe(known, predictions, unseen)`` (the scorer) is called
after the picks are fixed and its answer only goes into the records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from workflow_lib.design.config import DesignError
from workflow_lib.design.oracle import Oracle

Observe = Callable[[np.ndarray, np.ndarray | None, np.ndarray], dict[str, Any]]


class GuidedPicker:
    """Greedy: the k unseen candidates with the highest predicted target (random tie-break)."""

    def __init__(self, model: Any):
        self.model = model

    def propose(self, known: np.ndarray, values: np.ndarray, unseen: np.ndarray, k: int, seed: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        predictions = np.asarray(self.model.fit_predict(known, values, seed), dtype=np.float64)
        order = np.lexsort((rng.random(unseen.size), -predictions[unseen]))
        return unseen[order[:k]], predictions


class RandomPicker:
    """The baseline: k unseen candidates uniformly at random."""

    def propose(self, known: np.ndarray, values: np.ndarray, unseen: np.ndarray, k: int, seed: int,
                rng: np.random.Generator) -> tuple[np.ndarray, None]:
        return rng.choice(unseen, size=k, replace=False), None


@dataclass
class DesignRun:
    """What one run revealed, in order: candidate, true value, prediction when picked, generation."""

    revealed: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    predicted: list[float | None] = field(default_factory=list)
    generation: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, index: np.ndarray, values: np.ndarray, predictions: np.ndarray | None, generation: int) -> None:
        self.revealed += [int(i) for i in index]
        self.values += [float(v) for v in values]
        self.predicted += [None if predictions is None else float(predictions[i]) for i in index]
        self.generation += [generation] * len(index)

    @property
    def known(self) -> np.ndarray:
        return np.asarray(self.revealed, dtype=np.int64)


def run_design(picker: Any, oracle: Oracle, n_initial: int, per_generation: int, generations: int, seed: int,
               observe: Observe) -> DesignRun:
    if n_initial + generations * per_generation > oracle.n_candidates:
        raise DesignError(f"design: budget n_initial + generations * per_generation exceeds the "
                         f"{oracle.n_candidates} candidates")
    initial = np.random.default_rng([seed, 0]).choice(oracle.n_candidates, size=n_initial, replace=False)
    pick_rng = np.random.default_rng([seed, 1])
    run = DesignRun()
    run.add(initial, oracle.reveal(initial), None, 0)
    run.records.append(_record(run, oracle, 0, observe(run.known, None, np.empty(0, np.int64)), 0.0))
    for generation in range(1, generations + 1):
        t0 = time.perf_counter()
        unseen = np.flatnonzero(~oracle.revealed())
        picks, predictions = picker.propose(run.known, np.asarray(run.values), unseen, per_generation,
                                            seed * 1000 + generation, pick_rng)
        run.add(picks, oracle.reveal(picks), predictions, generation)
        seconds = time.perf_counter() - t0
        run.records.append(_record(run, oracle, generation, observe(run.known, predictions, unseen), seconds))
    return run


def _record(run: DesignRun, oracle: Oracle, generation: int, scores: dict[str, Any], seconds: float) -> dict:
    picked = [v for v, g in zip(run.values, run.generation) if g == generation]
    return {"generation": generation, "simulations": oracle.simulations, "best_true": max(run.values),
            "picked_mean_true": float(np.mean(picked)), **scores, "seconds": seconds}
