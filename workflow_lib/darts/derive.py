"""Deriving a discrete cell from architecture weights, and search diagnostics.

Torch-free (tensors are accepted, torch is not imported), so the report derives cells with this very rule.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from .genotypes import Genotype
from .primitives import PRIMITIVES

NONE_INDEX = PRIMITIVES.index("none")
ArrayLike = Any  # numpy array or torch tensor


def _to_numpy(a: ArrayLike) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _parse(weights: np.ndarray, steps: int, edge_weights: Optional[np.ndarray] = None
           ) -> List[Tuple[str, int]]:
    expected = sum(2 + i for i in range(steps))
    if weights.shape != (expected, len(PRIMITIVES)):
        raise ValueError(f"expected architecture weights of shape ({expected}, {len(PRIMITIVES)}), "
                         f"got {tuple(weights.shape)}")
    if edge_weights is not None:
        if edge_weights.shape != (expected,):
            raise ValueError(f"expected edge weights of shape ({expected},), got {tuple(edge_weights.shape)}")
        # PC-DARTS (Xu et al. 2020, Sec. 3.3): an edge's op strengths are its op softmax
        # weights times its normalized edge weight
        weights = weights * edge_weights[:, None]
    gene: List[Tuple[str, int]] = []
    start = 0
    for i in range(steps):
        n_in = 2 + i
        W = weights[start:start + n_in]
        masked = W.copy()
        masked[:, NONE_INDEX] = -np.inf
        strength = masked.max(axis=1)
        # two strongest incoming edges (stable for ties: lower input index first)
        edges = sorted(range(n_in), key=lambda j: -strength[j])[:2]
        for j in edges:
            k_best = int(np.argmax(masked[j]))  # first maximum, never 'none'
            gene.append((PRIMITIVES[k_best], j))
        start += n_in
    return gene


def derive_cell(weights: ArrayLike, steps: int = 4, edge_weights: Optional[ArrayLike] = None
                ) -> List[Tuple[str, int]]:
    """One cell's (op, input) pairs from its softmax weights (edges, 8), by the rule of derive_genotype."""
    edges = None if edge_weights is None else _to_numpy(edge_weights)
    return _parse(_to_numpy(weights), steps, edges)


def derive_genotype(alpha_normal: ArrayLike, alpha_reduce: ArrayLike, steps: int = 4,
                    multiplier: int = 4, edge_normal: Optional[ArrayLike] = None,
                    edge_reduce: Optional[ArrayLike] = None) -> Genotype:
    """The paper's rule: per intermediate node keep the 2 incoming edges whose strongest
    non-``none`` softmax weight is largest; each edge's op is its argmax excluding ``none``.

    ``alpha_*`` are the raw (steps-edge, 8) architecture parameters; the softmax over
    each edge is applied here and the softmax weights are compared across edges.
    ``edge_*`` (optional, PC-DARTS): the normalized (already softmaxed per node) edge
    weights; each edge's op weights are multiplied by its edge weight before the ranking.
    """
    wn = _softmax(_to_numpy(alpha_normal))
    wr = _softmax(_to_numpy(alpha_reduce))
    en = None if edge_normal is None else _to_numpy(edge_normal)
    er = None if edge_reduce is None else _to_numpy(edge_reduce)
    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(normal=_parse(wn, steps, en), normal_concat=concat,
                    reduce=_parse(wr, steps, er), reduce_concat=concat)


def edge_entropy(weights: ArrayLike) -> np.ndarray:
    """Shannon entropy (nats) of each edge's op distribution: (14, 8) -> (14,).

    ``weights`` are softmax weights (rows summing to 1)."""
    w = _to_numpy(weights)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D (edges, ops) array, got shape {w.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, w * np.log(w), 0.0)
    return -terms.sum(axis=1)


def count_skips(genotype: Genotype) -> Tuple[int, int]:
    """Number of ``skip_connect`` ops in the (normal, reduce) cells."""
    n = sum(1 for op, _ in genotype.normal if op == "skip_connect")
    r = sum(1 for op, _ in genotype.reduce if op == "skip_connect")
    return n, r


def top2_margin(values: ArrayLike) -> np.ndarray:
    """Per edge, the largest minus the second-largest value over the 8 ops: (14, 8) -> (14,).

    On softmax weights it says how far an edge is from a tie; on the raw alphas (logits) it can be set against
    how far a logit could have moved at all (``max_logit_drift`` in history.json)."""
    v = _to_numpy(values)
    if v.ndim != 2 or v.shape[1] < 2:
        raise ValueError(f"expected a 2-D (edges, ops) array with at least 2 ops, got shape {v.shape}")
    top = np.sort(v, axis=1)
    return top[:, -1] - top[:, -2]
