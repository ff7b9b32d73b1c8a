"""The search advantage's numbers (torch-free): the found cell's test score against random cells of its space.

Yang et al. (ICLR 2020, "NAS evaluation is frustratingly hard", Sec. 3) judge a NAS method by how its cell
compares with cells sampled at random from the same search space and trained with the same protocol; they
report the relative improvement over the random cells' mean, RI = 100 x (score_found - mean_random) /
mean_random (their Eq. 1, with accuracies). For R^2 the same formula is used: RI is then relative to the
random cells' mean R^2, and undefined (None) when that mean is not positive or not larger than the random
cells' spread (a mean within one standard deviation of zero makes the ratio noise: R^2 0.008 +- 0.27 would
give thousands of percent).

``compare(found, random_scores)`` -> percentile (percent of random cells the found cell beats, ties counting
half), beaten (strictly worse random cells), ties, n, random_mean, random_std (sample std, ddof=1),
relative_improvement (percent), z_score ((found - mean) / std; None when std is 0 or n < 2). A NaN score
(a diverged network) ranks below every finite one; means and spreads use the finite scores.

``summary_block(documents)``: summary.json's ``search_advantage`` from the per-seed advantage.json files.
One seed: percentile, beaten, n, found_score, random_scores, random_mean, random_std, relative_improvement,
protocol. Several seeds: the same keys pooled over seeds (each seed's found cell against its own random cells:
percentile = 100 x (sum of beaten + half the ties) / sum of n; found_score = the mean of the seeds' found
scores; random_scores, random_mean, random_std over all seeds' random cells; relative_improvement of that
mean found score against that pooled random mean), plus ``seeds`` and ``per_seed`` (each seed's own values).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

SUMMARY_KEYS = ("percentile", "beaten", "n", "found_score", "random_scores", "random_mean", "random_std",
                "relative_improvement", "protocol")


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _rank(value: Any, higher_is_better: bool) -> float:
    if value is None or not math.isfinite(float(value)):
        return -math.inf
    return float(value) if higher_is_better else -float(value)


def relative_improvement(found: float | None, random_mean: float | None,
                         random_std: float | None = None) -> float | None:
    """Yang et al. (2020), Eq. 1: 100 x (found - mean_random) / mean_random; None when the mean is not positive
    or not larger than the random cells' standard deviation."""
    if found is None or random_mean is None or not math.isfinite(found) or not random_mean > 0:
        return None
    if random_std is not None and random_mean <= random_std:
        return None
    return 100.0 * (found - random_mean) / random_mean


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    finite = _finite(values)
    if not finite:
        return None, None
    array = np.asarray(finite, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def rank_counts(found: float | None, random_scores: Sequence[float | None],
                higher_is_better: bool = True) -> tuple[int, int]:
    """(random cells the found cell strictly beats, ties)."""
    mine = _rank(found, higher_is_better)
    ranks = [_rank(v, higher_is_better) for v in random_scores]
    return sum(r < mine for r in ranks), sum(r == mine for r in ranks)


def percentile(beaten: int, ties: int, n: int) -> float | None:
    return 100.0 * (beaten + 0.5 * ties) / n if n else None


def compare(found: float | None, random_scores: Sequence[float | None],
            higher_is_better: bool = True) -> dict[str, Any]:
    beaten, ties = rank_counts(found, random_scores, higher_is_better)
    n = len(random_scores)
    mean, std = mean_std(random_scores)
    z = None
    if _finite([found]) and mean is not None and std and len(_finite(random_scores)) > 1:
        z = (float(found) - mean) / std
    return {"percentile": percentile(beaten, ties, n), "beaten": beaten, "ties": ties, "n": n,
            "random_mean": mean, "random_std": std, "relative_improvement": relative_improvement(found, mean, std),
            "z_score": z}


def _seed_entry(document: dict[str, Any]) -> dict[str, Any]:
    return {"seed": document.get("seed"), "percentile": document["percentile"], "beaten": document["beaten"],
            "ties": document.get("ties", 0), "n": document["n"], "found_score": document["found"]["score"],
            "random_scores": [cell["score"] for cell in document["random"]],
            "random_mean": document["random_mean"], "random_std": document["random_std"],
            "relative_improvement": document["relative_improvement"]}


def summary_block(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """summary.json's ``search_advantage`` (see the module docstring) from each seed's advantage.json."""
    if not documents:
        raise ValueError("summary_block: no advantage.json documents")
    entries = sorted((_seed_entry(d) for d in documents), key=lambda e: (e["seed"] is None, e["seed"]))
    protocol = documents[0]["protocol"]
    if len(entries) == 1:
        return {key: (protocol if key == "protocol" else entries[0][key]) for key in SUMMARY_KEYS}
    beaten = sum(e["beaten"] for e in entries)
    ties = sum(e["ties"] for e in entries)
    n = sum(e["n"] for e in entries)
    scores = [s for e in entries for s in e["random_scores"]]
    found_scores = _finite(e["found_score"] for e in entries)
    found = float(np.mean(found_scores)) if found_scores else None
    mean, std = mean_std(scores)
    return {"percentile": percentile(beaten, ties, n), "beaten": beaten, "n": n, "found_score": found,
            "random_scores": scores, "random_mean": mean, "random_std": std,
            "relative_improvement": relative_improvement(found, mean, std), "protocol": protocol,
            "seeds": [e["seed"] for e in entries], "per_seed": entries}
