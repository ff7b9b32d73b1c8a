"""PC-DARTS: partial channel connections and edge normalization (Xu et al., ICLR 2020).

Two changes to the DARTS supernet, the rest (ops, cell wiring, Architect, derivation rule)
is DARTS's and reused from this package:

* Partial channels (paper Sec. 3.2, Eq. 2): on every edge only the first C/K channels of
  the node pass through the mixed op (whose ops are built for C/K channels); the other
  channels bypass it unchanged (in a reduction edge max-pooled 2x2 to the new size, as in
  the authors' code).  The two parts are concatenated and the channels shuffled with K
  groups, so that the next edge samples a different subset (the authors' fixed-subset +
  shuffle implementation of the channel sampling).
* Edge normalization (Sec. 3.3, Eq. 4): a weight beta per edge; each node's incoming
  edges are weighted by softmax(beta) over that node's edges, multiplying the edge's whole
  output.  The derived cell ranks edges by beta-weight x op softmax weight (``none``
  excluded), as the authors' ``genotype()`` does.

The network owns alphas and betas in :meth:`PCSearchNetwork.alphas`, so the existing
:class:`~workflow_lib.darts.architect.Architect` updates both (first or second order).
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .derive import derive_genotype
from .search_cells import MixedOp, SearchCell
from .search_model import SearchNetwork, n_edges

DEFAULT_K = 4  # the paper's CIFAR-10 setting


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: output channel ``i * groups + g`` is input channel
    ``g * (C // groups) + i``.  Keeps the input's memory format (channels_last stays)."""
    n, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: {c} channels do not split into {groups} groups")
    out = torch.empty_like(x)  # same memory format as x
    # writing through a (cpg, groups) view of the output channels does the permutation in
    # one strided copy, for any layout (a reshape would force NCHW)
    out.unflatten(1, (c // groups, groups)).copy_(x.unflatten(1, (groups, c // groups)).transpose(1, 2))
    return out


def node_softmax(beta: torch.Tensor, steps: int) -> torch.Tensor:
    """Edge normalization: softmax of the (edges,) betas over each node's incoming edges
    (2, 3, ..., steps + 1 of them), concatenated back to (edges,)."""
    out, start = [], 0
    for i in range(steps):
        out.append(F.softmax(beta[start:start + 2 + i], dim=-1))
        start += 2 + i
    return torch.cat(out)


class PartialMixedOp(nn.Module):
    """A DARTS mixed op on the first C/K channels; the remaining channels bypass it."""

    def __init__(self, C: int, stride: int, k: int = DEFAULT_K):
        super().__init__()
        if C % k:
            raise ValueError(f"PC-DARTS needs C divisible by K: C={C}, K={k}")
        self.k = k
        self.stride = stride
        self.op_channels = C // k  # read by SearchCell: only these channels need the ReLU
        self.mixed = MixedOp(C // k, stride)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, xr: torch.Tensor = None,
                live=None) -> torch.Tensor:
        """``xr``: relu of the op's C/K input channels, if precomputed by the cell; ``live``: see
        :meth:`MixedOp.forward`."""
        part, rest = x[:, :self.op_channels], x[:, self.op_channels:]
        out = self.mixed(part, weights, xr, live=live)
        if self.stride != 1:
            # ceil_mode matches the ops' ceil(H/2) output on odd sizes (same as floor on even)
            rest = F.max_pool2d(rest, 2, 2, ceil_mode=True)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)


class PCSearchNetwork(SearchNetwork):
    """The DARTS search supernet with partial channel connections (``k``) and edge
    normalization (``beta_normal``, ``beta_reduce``: (edges,), init 1e-3*randn as the
    authors' code).  ``alphas()`` = [alpha_normal, alpha_reduce, beta_normal, beta_reduce]."""

    ALPHA_NAMES = ("alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce")

    def __init__(self, in_channels: int, out_dim: int, C: int = 16, layers: int = 8,
                 steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                 stem_stride: int = 1, k: int = DEFAULT_K, kernel: str = "eager", recompute: bool = False):
        if k < 1:
            raise ValueError(f"K must be >= 1, got {k}")
        self.k = k  # read by _make_cell during SearchNetwork.__init__
        super().__init__(in_channels, out_dim, C=C, layers=layers, steps=steps, multiplier=multiplier,
                         stem_multiplier=stem_multiplier, stem_stride=stem_stride, kernel=kernel,
                         recompute=recompute)
        e = n_edges(steps)
        self.beta_normal = nn.Parameter(1e-3 * torch.randn(e))
        self.beta_reduce = nn.Parameter(1e-3 * torch.randn(e))

    def _make_cell(self, steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev):
        return SearchCell(steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev,
                          make_op=lambda c, stride: PartialMixedOp(c, stride, self.k))

    def alphas(self) -> List[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce, self.beta_normal, self.beta_reduce]

    def edge_weights(self) -> Dict[str, torch.Tensor]:
        """The normalized edge weights (edges,) per cell type (softmax over each node's inputs)."""
        return {"normal": node_softmax(self.beta_normal, self.steps),
                "reduce": node_softmax(self.beta_reduce, self.steps)}

    def cell_inputs(self) -> Dict[str, tuple]:
        w, e = self.softmax_alphas(), self.edge_weights()
        return {"normal": (w["normal"], e["normal"]), "reduce": (w["reduce"], e["reduce"])}

    def genotype(self):
        e = {name: w.detach() for name, w in self.edge_weights().items()}
        return derive_genotype(self.alpha_normal, self.alpha_reduce, steps=self.steps,
                               multiplier=self.multiplier, edge_normal=e["normal"],
                               edge_reduce=e["reduce"])


def build_pc_search_network(in_channels: int, out_dim: int, C: int = 16, layers: int = 8,
                            k: int = DEFAULT_K, stem_stride: int = 1, kernel: str = "eager",
                            recompute: bool = False) -> PCSearchNetwork:
    """The paper's PC-DARTS supernet (CIFAR-10: C=16, 8 layers, K=4)."""
    return PCSearchNetwork(in_channels, out_dim, C=C, layers=layers, k=k, stem_stride=stem_stride,
                           kernel=kernel, recompute=recompute)
