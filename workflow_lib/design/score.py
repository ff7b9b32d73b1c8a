"""Scoring a design run against the complete table (lookup oracle only); never consulted when picking.

Top-k membership uses the true value of the k-th best candidate as a threshold: mirror-image patterns
often share a value, so a found design that ties with the k-th best counts as a top-k design; the count
is capped at k. "Best" means the largest target (the most stretchable sheet, as in Hanakata et al. 2018).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from workflow_lib.design.config import DesignError


class Scorer:
    def __init__(self, truth: np.ndarray, top_k: Sequence[int]):
        self._truth = np.asarray(truth, dtype=np.float64)
        # descending by value, ties by candidate index: a deterministic reference ranking
        self.order = np.lexsort((np.arange(self._truth.size), -self._truth))
        self.rank = np.empty(self._truth.size, dtype=np.int64)  # 1-based rank of each candidate
        self.rank[self.order] = np.arange(1, self._truth.size + 1)
        self.top_k = sorted({int(k) for k in top_k})
        if not self.top_k or self.top_k[0] < 1 or self.top_k[-1] > self._truth.size:
            raise DesignError(f"design.top_k must lie in [1, {self._truth.size}], got {list(top_k)}")
        self.thresholds = {k: float(self._truth[self.order[k - 1]]) for k in self.top_k}

    @property
    def best(self) -> float:
        return float(self._truth[self.order[0]])

    def found(self, known: np.ndarray) -> dict[str, int]:
        """``{"found_top{k}": count}``: known candidates at least as good as the true k-th best (<= k)."""
        values = self._truth[np.asarray(known, dtype=np.int64)]
        return {f"found_top{k}": int(min(k, np.sum(values >= t))) for k, t in self.thresholds.items()}

    def r2_unseen(self, predictions: np.ndarray | None, unseen: np.ndarray) -> float | None:
        """R^2 of a model's predictions on the candidates it had not seen (None for the random baseline)."""
        if predictions is None or len(unseen) < 2:
            return None
        y = self._truth[unseen]
        pred = np.asarray(predictions, dtype=np.float64)[unseen]
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum((pred - y) ** 2)) / ss_tot if ss_tot > 0 else None
