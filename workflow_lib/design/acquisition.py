"""Acquisition functions and batch rules of the design loop (maximisation).

- ``greedy``: the predicted mean (Hanakata et al., PRL 121, 255304, 2018 revealed the best-predicted designs).
- ``ucb``: mean + kappa * std, the upper confidence bound (Srinivas, Krause, Kakade and Seeger, ICML 2010).
- ``ei``: expected improvement over the best revealed value f* under a Gaussian N(mean, std^2) (Jones, Schonlau
  and Welch, J. Global Optim. 13, 455, 1998, eq. 15): with d = mean - f* - xi and z = d / std,
  EI = d * Phi(z) + std * phi(z); where std = 0, EI = max(d, 0).

Batch rules pick k designs per generation from the unseen candidates ranked by acquisition (ties broken at
random): ``top`` takes the first k; ``diverse`` walks the ranking and skips a candidate closer than
``min_distance`` to a design already picked in this generation, so one generation does not spend its budget
on near-copies of one design; when fewer than k remain, the best skipped ones fill the generation (the
budget is always spent; ``Selection.filled`` counts them). Distance (``Distances``): the fraction of
differing features when all are 0/1 (Hamming / F: kirigami's 15 cut bits), else the root-mean-square
difference of standardized features over sqrt(2), about 1 for two independent random designs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workflow_lib.design.config import DesignError


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    from scipy.stats import norm

    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    gain = mean - best - xi
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    value = gain * norm.cdf(z) + std * norm.pdf(z)
    return np.where(std > 0, value, np.maximum(gain, 0.0))


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, kappa: float) -> np.ndarray:
    return np.asarray(mean, np.float64) + kappa * np.asarray(std, np.float64)


def acquisition(name: str, mean: np.ndarray, std: np.ndarray | None, best: float, kappa: float,
                xi: float) -> np.ndarray:
    """The acquisition value of every candidate (larger is better)."""
    if name == "greedy":
        return np.asarray(mean, np.float64)
    if std is None:
        raise DesignError(f"design: acquisition {name} needs the model's spread (an ensemble)")
    if name == "ucb":
        return upper_confidence_bound(mean, std, kappa)
    if name == "ei":
        if not math.isfinite(best):
            raise DesignError("design: expected improvement needs at least one revealed finite value")
        return expected_improvement(mean, std, best, xi)
    raise DesignError(f"design: unknown acquisition {name!r}")


class Distances:
    """Distances between candidates in feature space (see the module docstring)."""

    def __init__(self, features: np.ndarray, binary: bool):
        self.binary = binary
        features = np.asarray(features, dtype=np.float32)
        if binary:
            self.points = features
        else:
            std = features.std(axis=0)
            self.points = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
        self.width = max(1, features.shape[1])

    def from_one(self, i: int, others: np.ndarray) -> np.ndarray:
        diff = self.points[others] - self.points[i]
        if self.binary:
            return np.abs(diff).sum(axis=1) / self.width
        return np.sqrt((diff.astype(np.float64) ** 2).sum(axis=1) / self.width / 2.0)


@dataclass(frozen=True)
class Selection:
    picks: np.ndarray  # (k,) candidate ids, in pick order
    filled: int  # diverse: picks taken despite min_distance (too few candidates far enough apart)


def rank(scores: np.ndarray, unseen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The unseen candidates, best acquisition first, ties in random order."""
    unseen = np.asarray(unseen, dtype=np.int64)
    return unseen[np.lexsort((rng.random(unseen.size), -np.asarray(scores, np.float64)[unseen]))]


def select(order: np.ndarray, k: int, rule: str, min_distance: float = 0.0,
           distances: Distances | None = None) -> Selection:
    """k picks from ``order`` (best first) with the batch rule."""
    if k > order.size:
        raise DesignError(f"design: {k} picks asked from {order.size} unseen candidates")
    if rule == "top":
        return Selection(order[:k].copy(), 0)
    if rule != "diverse" or distances is None:
        raise DesignError(f"design: unknown batch rule {rule!r}")
    blocked = np.zeros(order.size, dtype=bool)
    taken = np.zeros(order.size, dtype=bool)
    position = 0
    picks: list[int] = []
    while len(picks) < k:
        free = np.flatnonzero(~blocked[position:])
        if free.size == 0:
            break
        position += int(free[0])
        taken[position] = blocked[position] = True
        picks.append(int(order[position]))
        rest = np.flatnonzero(~blocked)
        blocked[rest[distances.from_one(int(order[position]), order[rest]) < min_distance]] = True
    filled = k - len(picks)
    if filled:
        picks += [int(i) for i in order[~taken][:filled]]
    return Selection(np.asarray(picks, dtype=np.int64), filled)
