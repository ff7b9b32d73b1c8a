"""Search-space building blocks: the mixed op of an edge and the search cell.

Speed notes (the algorithm is unchanged):

* ``none`` contributes exactly zero to the mixed-op sum, so it is skipped instead of
  computing ``zeros * weight``.
* Every ReLU-first op (sep/dil convs, FactorizedReduce) on every edge leaving a node
  would compute ``relu(node)``; the cell computes it once per node and passes it on.
* ``kernel`` (``search.kernel``, see :mod:`.mixed_kernels`): ``eager`` is the reference; ``fused``
  sums a DARTS node's incoming edges and their ops into one buffer
  (:class:`~.mixed_kernels.NormalizedWeightedSum` over all ``w_jk * BN_jk(z_jk)``, each op's closing
  batch norm folded in; :class:`~.mixed_kernels.WeightedSum` where it cannot be) and skips ops of
  weight exactly 0;
  ``compiled`` runs each mixed op through ``torch.compile``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mixed_kernels import KERNELS, compiled_mixed_sum, foldable_norm, normalized_weighted_sum, weighted_sum
from .ops import OPS, PRIMITIVES, FactorizedReduce, ReLUConvBN

NONE_INDEX = PRIMITIVES.index("none")
SOME_OPS = tuple(k for k in range(len(PRIMITIVES)) if k != NONE_INDEX)  # all but none


class MixedOp(nn.Module):
    """Softmax-weighted sum of all primitives on one edge (search ops: affine=False BN;
    pooling followed by BatchNorm(affine=False) as in the original search code)."""

    def __init__(self, C: int, stride: int):
        super().__init__()
        self.stride = stride
        self._ops = nn.ModuleList()
        for name in PRIMITIVES:
            op = OPS[name](C, stride, False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
                op.relu_first = False
            self._ops.append(op)
        self._relu_first = [bool(getattr(op, "relu_first", False)) for op in self._ops]
        self.kernel = "eager"

    def outputs(self, x: torch.Tensor, xr: torch.Tensor, index: Sequence[int]) -> List[torch.Tensor]:
        """The outputs of the ops ``index`` (``xr`` = relu(x), shared by the ReLU-first ops)."""
        return [self._ops[k].forward_prerelu(xr) if self._relu_first[k] else self._ops[k](x) for k in index]

    def terms(self, x: torch.Tensor, xr: torch.Tensor, index: Sequence[int]) -> List[tuple]:
        """Per op of ``index``: (its output before its closing batch norm, that batch norm) where the
        norm can be folded into the weighted sum (:func:`~.mixed_kernels.foldable_norm`), else
        (its output, None)."""
        out = []
        for k in index:
            op = self._ops[k]
            if isinstance(op, nn.Sequential) and foldable_norm(op[-1]):  # pool -> BN
                out.append((op[0](x), op[-1]))
            elif self._relu_first[k] and hasattr(op, "forward_prenorm"):
                z, bn = op.forward_prenorm(xr)
                out.append((z, bn) if foldable_norm(bn) else (bn(z), None))
            else:
                out.append((op.forward_prerelu(xr) if self._relu_first[k] else op(x), None))
        return out

    def forward(self, x: torch.Tensor, weights: torch.Tensor, xr: torch.Tensor = None,
                live: Optional[Sequence[int]] = None) -> torch.Tensor:
        """``weights``: (8,) softmax weights of this edge; ``xr`` = relu(x) if precomputed;
        ``live``: the ops to compute (fused/compiled kernels: those of nonzero weight, never none)."""
        if xr is None:
            xr = F.relu(x)
        if self.kernel == "fused":
            index = SOME_OPS if live is None else live
            return weighted_sum(weights, self.outputs(x, xr, index), index)
        if self.kernel == "compiled":
            return compiled_mixed_sum(self, x, xr, weights, tuple(SOME_OPS if live is None else live))
        out = None
        for k, op in enumerate(self._ops):
            if k == NONE_INDEX:
                continue  # exactly zero
            y = op.forward_prerelu(xr) if self._relu_first[k] else op(x)
            term = weights[k] * y
            out = term if out is None else out + term
        return out


class SearchCell(nn.Module):
    """DARTS search cell: 2 inputs, ``steps`` intermediate nodes, every node connected to
    all its predecessors by a MixedOp (or ``make_op(C, stride)``, e.g. PC-DARTS's partial
    mixed op); output = concat of the last ``multiplier`` nodes."""

    def __init__(self, steps: int, multiplier: int, C_prev_prev: int, C_prev: int, C: int,
                 reduction: bool, reduction_prev: bool, make_op: Callable[[int, int], nn.Module] = None):
        super().__init__()
        make_op = MixedOp if make_op is None else make_op
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(make_op(C, stride))
        # the channels of a node that the edges' ReLU-first ops read (None: all of them;
        # PC-DARTS edges read only the first C/K channels, so only those need the ReLU)
        self._relu_channels = getattr(self._ops[0], "op_channels", None)
        self.kernel = "eager"
        # fused kernel: fold each op's closing batch norm into the node's weighted sum (fp32/fp64,
        # training mode; :class:`~.mixed_kernels.NormalizedWeightedSum`)
        self.fold_norms = True

    def set_kernel(self, kernel: str) -> None:
        """The weighted-sum kernel of this cell and its mixed ops (``search.kernel``)."""
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.kernel = kernel
        for module in self.modules():
            if isinstance(module, MixedOp):
                module.kernel = kernel

    def _relu(self, h: torch.Tensor) -> torch.Tensor:
        n = self._relu_channels
        return F.relu(h if n is None else h[:, :n])

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_weights: Optional[torch.Tensor] = None,
                live: Optional[List[List[int]]] = None) -> torch.Tensor:
        """``weights``: (edges, ops) softmax op weights; ``edge_weights``: optional (edges,)
        weight per edge multiplying the edge's output (PC-DARTS edge normalization); ``live``:
        per edge the ops to compute (:func:`~.mixed_kernels.live_ops`; fused/compiled kernels)."""
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states: List[torch.Tensor] = [s0, s1]
        relus: List[torch.Tensor] = [self._relu(s0), self._relu(s1)]
        fused_nodes = self.kernel == "fused" and edge_weights is None and type(self._ops[0]) is MixedOp
        offset = 0
        for i in range(self.steps):
            if fused_nodes:
                s = self._fused_node(states, relus, weights, offset, live)
            elif self.kernel == "fused" and edge_weights is not None:  # PC-DARTS: sum_j beta_j * edge_j
                ys = [self._ops[offset + j](h, weights[offset + j], relus[j],
                                            live=None if live is None else live[offset + j])
                      for j, h in enumerate(states)]
                s = weighted_sum(edge_weights[offset:offset + len(states)], ys, range(len(states)))
            else:
                s = None
                for j, h in enumerate(states):
                    y = self._ops[offset + j](h, weights[offset + j], relus[j],
                                              live=None if live is None else live[offset + j])
                    if edge_weights is not None:
                        y = edge_weights[offset + j] * y
                    s = y if s is None else s + y
            offset += len(states)
            states.append(s)
            if i < self.steps - 1:  # the last node feeds no edge
                relus.append(self._relu(s))
        return torch.cat(states[-self.multiplier:], dim=1)

    def _fused_node(self, states, relus, weights, offset: int, live) -> torch.Tensor:
        """One DARTS node, sum_j sum_k w_jk * op_k(h_j), accumulated into one buffer."""
        flat: List[int] = []
        n_ops = weights.shape[1]
        fold = self.fold_norms and states[0].dtype in (torch.float32, torch.float64)
        terms: List[tuple] = []
        for j, h in enumerate(states):
            index = SOME_OPS if live is None else live[offset + j]
            op = self._ops[offset + j]
            terms.extend(op.terms(h, relus[j], index) if fold else [(y, None) for y in op.outputs(h, relus[j], index)])
            flat.extend((offset + j) * n_ops + k for k in index)
        if any(bn is not None for _, bn in terms):
            return normalized_weighted_sum(weights.reshape(-1), terms, flat)
        return weighted_sum(weights.reshape(-1), [y for y, _ in terms], flat)
